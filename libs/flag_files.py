"""Where an environment's feature flags are: a flagd flag-definition file the gatekeeper writes and applications read.

Shared so that whoever starts an application (the deployer's driver) can tell it its environment's file in
FLAGS_FILE_ENV without knowing the gatekeeper.
"""

from pathlib import Path

FLAGS_FILE_ENV = "SLIPWAY_FLAGS_FILE"  # examples/sample_app/flags.py reads the same variable


def flags_file(data_dir: Path, environment: str) -> Path:
    return data_dir / "flags" / f"{environment}.flagd.json"
