"""Every service's migration history against its models (libs.migrations).

    python -m slipway.schema revision <service> "what changes"   # autogenerate the next revision
    python -m slipway.schema check                               # exit 1 when a history lags its models
"""

import sys

from sqlalchemy import MetaData

from libs.migrations import differences, revision


def service_metadatas() -> dict[str, list[MetaData]]:
    """Each service's tables as its app wires them, the shared messaging tables (inbox, outbox) included."""
    from libs.store import messaging
    from services.artifact_verifier.app import METADATAS as verifier
    from services.deployer.app import METADATAS as deployer
    from services.gatekeeper.app import METADATAS as gatekeeper
    from services.health_watcher.app import METADATAS as health
    from services.metrics_collector.app import METADATAS as collector
    from services.rollback_controller.app import METADATAS as rollback

    own = {"artifact-verifier": verifier, "gatekeeper": gatekeeper, "deployer": deployer, "health-watcher": health,
           "rollback-controller": rollback, "metrics-collector": collector}
    return {service: [messaging, *metadatas] for service, metadatas in own.items()}


def main(argv: list[str]) -> int:
    everything = service_metadatas()
    if argv[:1] == ["check"]:
        drifted = {service: found for service, metadatas in everything.items()
                   if (found := differences(service, metadatas))}
        for service, found in drifted.items():
            print(f"{service}: models and migrations differ: {found}")
        return 1 if drifted else 0
    if len(argv) == 3 and argv[0] == "revision" and argv[1] in everything:
        revision(argv[1], argv[2], everything[argv[1]])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
