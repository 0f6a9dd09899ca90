"""A tiny stdlib-only HTTP service that build_sample packages into a zipapp for demo deployments."""
