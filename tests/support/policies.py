"""The committed policy (infra/policies), with room for every test's releases in flight at once.

The committed concurrency policy lets one deployment at a time into prod; tests that are not about
concurrency run many releases (or no deployer to end one), so they get a copy with the limit raised.
"""

import shutil
from pathlib import Path

COMMITTED = Path(__file__).resolve().parents[2] / "infra" / "policies"


def policy_for_tests(directory: Path, concurrency: int = 100, **files: str) -> Path:
    """A copy of the committed policy in `directory`; `files` replace whole files (name without .yaml -> text)."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in COMMITTED.glob("*.yaml"):
        if source.name != "services.yaml":  # the catalogue is the tests' own (SLIPWAY_SERVICE_CATALOGUE)
            shutil.copy(source, directory / source.name)
    (directory / "concurrency.yaml").write_text(f"default: {concurrency}\n")
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return directory
