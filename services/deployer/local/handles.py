"""What the local driver records of a process it runs (plain data the deployer persists, to adopt live
processes after a restart instead of starting duplicates), and the names its files go by."""

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RouterHandle:
    service: str
    environment: str
    pid: int
    port: int
    admin_port: int
    region: str = ""  # one router per region for regional releases; "" routes the whole environment

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.admin_url}/metrics"

    @property
    def health_url(self) -> str:
        return f"{self.admin_url}/healthz"


@dataclass(frozen=True)
class InstanceHandle:
    service: str
    environment: str
    version: str
    pid: int
    port: int
    artifact_path: str
    slot: int = 0  # which instance of the version's pool
    region: str = ""  # the region it serves in ("" the whole environment); this machine runs them all
    config: dict[str, str] = field(default_factory=dict, hash=False)  # the environment's declared configuration it was given

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/healthz"


def safe_name(*parts: str) -> str:
    """A file name built from caller-supplied parts that cannot escape its directory."""
    return ".".join(re.sub(r"[^A-Za-z0-9_-]", "_", part) for part in parts)






def router_name(service: str, environment: str, region: str = "") -> str:
    # The environment's one router keeps the name it had before routers had regions, so it is still adopted.
    return safe_name("router", service, environment, *((region,) if region else ()))


def process_name(handle: RouterHandle | InstanceHandle) -> str:
    if isinstance(handle, RouterHandle):
        return router_name(handle.service, handle.environment, handle.region)
    return instance_name(handle.service, handle.environment, handle.version, handle.slot)


def instance_name(service: str, environment: str, version: str, slot: int) -> str:
    # Slot 0 keeps the name instances had before a version ran as a pool, so those are still adopted.
    extra = (str(slot),) if slot else ()
    return safe_name("app", service, environment, version, *extra)
