"""The policy in force: loaded at start, read again when its files change, the last good one kept on error."""

import hashlib
import logging
from pathlib import Path

from services.gatekeeper.policy import Policy
from services.gatekeeper.policy_files import PolicyError, load_policy

log = logging.getLogger("slipway.gatekeeper.policy")


class PolicySource:
    def __init__(self, directory: Path, catalogue: Path | None = None) -> None:
        self.directory, self.catalogue = directory, catalogue
        self._policy: Policy | None = None
        self._stamp: tuple | None = None
        self.last_error: str | None = None

    def load(self) -> Policy:
        """At start: a broken policy stops the gatekeeper with the reason (there is no good one to keep)."""
        self._stamp = self._files_stamp()
        self._policy = load_policy(self.directory, self.catalogue)
        return self._policy

    def current(self) -> Policy:
        if self._policy is None:
            return self.load()
        return self._policy

    def refresh(self) -> bool:
        """Load again if a file changed; on error keep the last good policy and say why. True when replaced."""
        stamp = self._files_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self._policy = load_policy(self.directory, self.catalogue)
        except PolicyError as error:
            self.last_error = str(error)
            log.error("the changed policy is refused, the last good one stays in force: %s", error)
            return False
        self.last_error = None
        log.info("policy reloaded from %s", self.directory)
        return True

    def reload(self) -> Policy:
        """Load now, whatever changed (`slipway policy reload`); PolicyError leaves the last good one in force."""
        stamp = self._files_stamp()
        policy = load_policy(self.directory, self.catalogue)  # raises PolicyError: nothing replaced
        self._policy, self._stamp, self.last_error = policy, stamp, None
        return policy

    def fingerprint(self) -> str:
        """sha256 over the policy files' names and bytes: which policy decided, for the audit trail."""
        digest = hashlib.sha256()
        for path, *_ in self._files_stamp():
            digest.update(path.encode() + b"\0")
            try:
                digest.update(Path(path).read_bytes())
            except OSError:
                continue
        return "sha256:" + digest.hexdigest()

    def files(self) -> list[str]:
        return sorted(Path(path).name for path, *_ in self._files_stamp())

    def _files_stamp(self) -> tuple:
        paths = sorted(self.directory.glob("*.y*ml")) + ([self.catalogue] if self.catalogue else [])
        stamp = []
        for path in paths:
            try:
                info = path.stat()
            except OSError:
                continue
            stamp.append((str(path), info.st_mtime_ns, info.st_size))
        return tuple(stamp)
