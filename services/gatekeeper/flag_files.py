"""Each environment's flags written as a flagd flag-definition file (libs.flag_files says where).

Written whole to a temporary file and renamed over the old one, so a reader (the application's flagd
provider polls the file) sees the old flags or the new ones, never half a file.
"""

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from libs.flag_files import flags_file
from services.gatekeeper.flags import Flag, flagd_document


def write_flags(data_dir: Path, environment: str, flags: Iterable[Flag]) -> Path:
    target = flags_file(data_dir, environment)
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(flagd_document(flags), indent=2, sort_keys=True) + "\n"
    fd, partial = tempfile.mkstemp(dir=directory, prefix=f".{environment}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, 0o644)  # the applications that read it may run as another user
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target
