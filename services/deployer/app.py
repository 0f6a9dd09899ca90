"""Wiring of the deployer: approvals, verdicts and rollback requests -> the configured deploy target; incident pauses from the
gatekeeper; people pausing, resuming and promoting a release; upkeep of what runs."""

from faststream import FastStream
from pydantic import BaseModel
from opentelemetry.sdk.trace.export import SpanExporter

from contracts import subjects
from contracts.commands import CheckDrift, PauseRelease, PromoteRelease, ResumeRelease
from contracts.events import ReleaseApproved, RollbackRequested, RolloutPauseChange, StepVerdict
from libs.artifact_sources import ArtifactSources
from libs.artifacts import FetchLimits
from libs.commands import serve_signed_command
from libs.consume import consume
from libs.periodic import Every
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from services.deployer.artifacts import ArtifactStore
from services.deployer.environments import Drift, declared_config
from services.deployer.handlers import ON_APPROVED, ON_ROLLBACK, ON_VERDICT, Handlers
from services.deployer.local.driver import LocalDriver
from services.deployer.local.target import LocalTarget
from services.deployer.memory_target import MemoryTarget
from services.deployer.pauses import ON_PAUSE, Pauses
from services.deployer.previews import Previews, metadata as previews_metadata
from services.deployer.refusals import alert_for_refused
from services.deployer.steering_commands import Steering
from services.deployer.steering_store import metadata as steering_metadata
from services.deployer.store import metadata
from services.deployer.target import DeployTarget
from services.deployer.upkeep import Upkeep

# Its tables, as its migration history (migrations/<service>/) creates them.
METADATAS = (metadata, previews_metadata, steering_metadata)
# Releases handled at once: fifty approved together each start their own processes instead of waiting, ten at a
# time, for the slowest of a fetched batch. One service and environment still changes one at a time (its lock).
CONCURRENT_RELEASES = 64


def deploy_target(settings: Settings) -> DeployTarget:
    # Instances get their environment's declared configuration, as it is declared when each starts.
    config_for = declared_config(settings.environments_dir)
    if settings.deploy_target == "memory":
        return MemoryTarget(config_for)
    driver = LocalDriver(settings.data_dir / "run", crash_points=settings.crash_points, crash_marker_dir=settings.data_dir,
                         flags_dir=settings.data_dir)
    return LocalTarget(driver, config_for)


def build(settings: Settings, exporter: SpanExporter | None = None, target: DeployTarget | None = None) -> FastStream:
    """`target` replaces the configured deploy target (tests pass a MemoryTarget they then inspect)."""
    runtime = build_runtime("deployer", settings, METADATAS, exporter=exporter)
    driver = target or deploy_target(settings)
    artifacts = ArtifactStore(
        settings.data_dir / "deployer-artifacts", ArtifactSources.from_settings(settings),
        FetchLimits.from_settings(settings),
    )
    handlers = Handlers(runtime, driver, artifacts)
    # Approvals into a preview environment pass its template's quota first; previews past their ttl are torn down.
    previews = Previews(runtime, settings.environments_dir, driver, handlers.lock_for, handlers.on_release_approved)

    async def alert_refused(refused: BaseModel | None, reason: str) -> None:
        await runtime.emit(alert_for_refused(refused, reason))

    upkeep = Upkeep(runtime, driver, artifacts, handlers.lock_for, handlers.resume_plan)
    for subject, durable, model, handle, workers in (
        (subjects.RELEASE_APPROVED, ON_APPROVED, ReleaseApproved, previews.on_release_approved, CONCURRENT_RELEASES),
        (subjects.STEP_VERDICT, ON_VERDICT, StepVerdict, handlers.on_step_verdict, CONCURRENT_RELEASES),
        (subjects.ROLLBACK_REQUESTED, ON_ROLLBACK, RollbackRequested, handlers.on_rollback_requested,
         CONCURRENT_RELEASES),
        # Incident pauses and their lifting through one durable, one at a time, so a resume is never read before
        # its pause.
        (f"{subjects.ROLLOUT_PREFIX}.>", ON_PAUSE, RolloutPauseChange, Pauses(handlers).on_rollout_change, 1),
    ):
        consume(runtime.broker, settings, subject=subject, durable=durable, model=model, handle=handle,
                on_refused=alert_refused, max_workers=workers)
    # People steering a release in flight (slipway pause / resume / promote; abort is the rollback-controller's).
    steering = Steering(handlers)
    serve_signed_command(runtime, subjects.CMD_PAUSE_RELEASE, PauseRelease, steering.pause_release)
    serve_signed_command(runtime, subjects.CMD_RESUME_RELEASE, ResumeRelease, steering.resume_release)
    serve_signed_command(runtime, subjects.CMD_PROMOTE_RELEASE, PromoteRelease, steering.promote_release)
    # slipway env drift [--reconcile], and on a schedule; an expired preview is not drift
    drift = Drift(runtime, settings.environments_dir, driver, artifacts, handlers.lock_for, previews.expired_environments)
    serve_signed_command(runtime, subjects.CMD_CHECK_DRIFT, CheckDrift, drift.check_drift)
    environments = Every(settings.drift_interval_s, previews.expire, drift.scheduled)
    # Reconciled before the consumers start, so a redelivered approval finds what already runs.
    runtime.on_start.extend([upkeep.reconcile, upkeep.start, environments.start])
    runtime.on_stop.extend([upkeep.stop, environments.stop, driver.close])
    return build_app(runtime)
