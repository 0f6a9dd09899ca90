"""`slipway policy reload`: a release manager has the gatekeeper read its policy now, recorded in the audit trail."""

from contracts import subjects
from contracts.commands import CommandResult, ReloadPolicy
from contracts.events import PolicyReloaded
from libs.commands import Refused, Signed, serve_signed_command
from libs.policy_yaml import PolicyError
from services.gatekeeper.policy_source import PolicySource
from services.gatekeeper.workflow import SOURCE, ReleaseWorkflow



class PolicyCommands:
    def __init__(self, workflow: ReleaseWorkflow, policy: PolicySource) -> None:
        self.workflow, self.policy, self.runtime = workflow, policy, workflow.runtime

    async def reload(self, command: ReloadPolicy, by: Signed) -> CommandResult:
        async with self.workflow.turn:  # never between two evaluations of one release
            try:
                self.policy.reload()
            except PolicyError as broken:
                problems = "; ".join(str(p) for p in broken.problems[:20])
                raise Refused(f"the policy in {self.policy.directory} is not applied, the last good one stays: "
                              f"{problems}") from None
            files = self.policy.files()
            await self.runtime.emit(PolicyReloaded(
                actor=by.actor, source=SOURCE, fingerprint=self.policy.fingerprint(), files=files, reason=command.reason,
                signed_command=by.proof,
            ))
        self.workflow.wake()  # waiting releases are judged under the new policy at once
        return CommandResult(ok=True, message=f"policy reloaded from {self.policy.directory} by {by.actor} "
                             f"({len(files)} file(s))", data={"fingerprint": self.policy.fingerprint()})


def register(workflow: ReleaseWorkflow, policy: PolicySource) -> None:
    serve_signed_command(workflow.runtime, subjects.CMD_RELOAD_POLICY, ReloadPolicy, PolicyCommands(workflow, policy).reload)
