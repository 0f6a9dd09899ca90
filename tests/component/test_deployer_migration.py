"""The deployer's records from before deploy-target handles (the local driver's pids and ports) are carried over
by its migration 0002, so an upgraded deployer adopts the routers and instances that run."""

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from libs.migrations import config_for
from services.deployer import store
from services.deployer.local.driver import InstanceHandle, RouterHandle
from services.deployer.local.target import as_instance, as_router
from slipway.schema import service_metadatas


def test_routers_instances_and_reported_refusals_become_handles(tmp_path: Path) -> None:
    metadatas = service_metadatas()["deployer"]
    engine = create_engine(f"sqlite:///{tmp_path / 'deployer.db'}")
    with engine.begin() as connection:
        command.upgrade(config_for("deployer", connection, metadatas), "0001")
        connection.execute(text("INSERT INTO routers VALUES ('shop', 'prod', 101, 8001, 8002)"))
        connection.execute(text("INSERT INTO instances VALUES ('shop', 'prod', '1.0.0', 102, 8003, '/copies/a')"))
        connection.execute(text("INSERT INTO router_refusals VALUES ('shop', 'prod', 101, 3)"))
        command.upgrade(config_for("deployer", connection, metadatas), "head")
        router = connection.execute(text("SELECT handle FROM target_routers")).scalar_one()
        instance = connection.execute(text(
            "SELECT version, slot, artifact_path, handle FROM target_instances")).one()
        seen = connection.execute(text("SELECT router, reported FROM router_refusals_seen")).one()
    engine.dispose()
    assert as_router(store.Handle.from_json(router)) == RouterHandle("shop", "prod", 101, 8001, 8002)
    assert (instance.version, instance.slot, instance.artifact_path) == ("1.0.0", 0, "/copies/a")
    assert as_instance(store.Handle.from_json(instance.handle)) == InstanceHandle(
        "shop", "prod", "1.0.0", 102, 8003, "/copies/a", 0)
    # The same router: its refusals already reported are not reported again.
    assert (seen.router, seen.reported) == (store.Handle.from_json(router).identity, 3)
