"""The sample's feature flags, read through the OpenFeature SDK from a flagd flag-definition file.

The file is the environment's flags as slipway's gatekeeper writes them (`<data dir>/flags/<env>.flagd.json`);
its path comes in SLIPWAY_FLAGS_FILE. The flagd provider's file mode evaluates in this process and polls
the file, so `slipway flags set/rollout` changes the answer within a poll, without a deployment.

Flags are optional: without the SDK (a bare python3), without SLIPWAY_FLAGS_FILE, or without the flag in
the file, every flag is off and the sample behaves as before.
"""

from __future__ import annotations

import logging
import os
from typing import Any

FLAGS_FILE_ENV = "SLIPWAY_FLAGS_FILE"
POLL_MS = 200  # how soon a changed file is read again
MISSING_FILE = "Provided file path not valid"  # what the flagd provider logs when the file is absent

log = logging.getLogger("sample_app.flags")


class Flags:
    def __init__(self, client: Any = None, context_type: Any = None) -> None:
        self._client, self._context_type = client, context_type

    def enabled(self, key: str, targeting_key: str | None = None) -> bool:
        if self._client is None:
            return False
        context = self._context_type(targeting_key=targeting_key) if targeting_key else self._context_type()
        return bool(self._client.get_boolean_value(key, False, context))


def open_flags(path: str | None = None) -> Flags:
    """Flags from `path` (default: $SLIPWAY_FLAGS_FILE); all off when the SDK or the path is missing."""
    path = path or os.environ.get(FLAGS_FILE_ENV)
    if not path:
        return Flags()
    try:
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType
        from openfeature.evaluation_context import EvaluationContext
    except ImportError:
        log.warning("OpenFeature SDK not installed: every flag is off")
        return Flags()
    if not os.path.exists(path):
        log.warning("%s does not exist yet: flags are off until it does", path)
    # The provider reads the file once it appears; until then it would log a traceback at every poll.
    logging.getLogger("openfeature.contrib").addFilter(lambda record: record.getMessage() != MISSING_FILE)
    api.set_provider(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path, deadline_ms=POLL_MS))
    return Flags(api.get_client("sample-app"), EvaluationContext)
