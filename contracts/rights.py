"""What each person's role lets them command, and over which teams' releases. Pure data and functions.

A command subject that appears here is a person's command: it must come signed
(libs.commands.serve_signed_command), and only the roles listed may send it. Team-scoped commands
act on one release; a person acts on the releases of their own teams' services unless one of
their roles that allows the command covers every team.
"""

from collections.abc import Iterable

from contracts import subjects
from contracts.identity import Role

# Anyone who ships may ask for a change record and declare an incident; approving a change record
# is a change manager's (four-eyes: never their own), resolving an incident an SRE's.
ROLE_COMMANDS: dict[Role, frozenset[str]] = {
    Role.RELEASE_MANAGER: frozenset({subjects.CMD_FREEZE, subjects.CMD_LIFT_FREEZE, subjects.CMD_CREATE_CHANGE,
                                     subjects.CMD_OPEN_INCIDENT}),
    Role.SRE: frozenset({*subjects.STEERING_COMMANDS, subjects.CMD_CREATE_CHANGE,
                         subjects.CMD_OPEN_INCIDENT, subjects.CMD_RESOLVE_INCIDENT}),
    Role.DEVELOPER: frozenset({*subjects.STEERING_COMMANDS, subjects.CMD_CREATE_CHANGE,
                               subjects.CMD_OPEN_INCIDENT}),
    Role.CHANGE_MANAGER: frozenset({subjects.CMD_CREATE_CHANGE, subjects.CMD_APPROVE_CHANGE}),
}
# Those who ran or own a release write its post-implementation review: a developer or team lead for
# their own teams' releases, an SRE or release manager for any team's (ALL_TEAMS_ROLES_OF below).
for _role in (Role.SRE, Role.DEVELOPER, Role.RELEASE_MANAGER, Role.TEAM_LEAD):
    ROLE_COMMANDS[_role] = ROLE_COMMANDS.get(_role, frozenset()) | {subjects.CMD_RECORD_PIR}
# Approving or rejecting a waiting release is open to every role the policy may name as an approval
# authority; whether one person's approval counts (role, team, quorum, four eyes) is the gatekeeper's
# policy decision (infra/policies/approvals.yaml, classes.yaml).
APPROVING_ROLES = (Role.RELEASE_MANAGER, Role.SRE, Role.TEAM_LEAD, Role.CHANGE_MANAGER, Role.CAB_MEMBER, Role.EXECUTIVE,
                   Role.OPERATIONS, Role.SECURITY, Role.BUSINESS)
for _role in APPROVING_ROLES:
    # ... and, like every role, ask for a change record.
    ROLE_COMMANDS[_role] = ROLE_COMMANDS.get(_role, frozenset()) | {subjects.CMD_APPROVE, subjects.CMD_REJECT,
                                                                   subjects.CMD_CREATE_CHANGE}
# Policy changes take effect on a release manager's word (and by themselves when the files change).
ROLE_COMMANDS[Role.RELEASE_MANAGER] = ROLE_COMMANDS[Role.RELEASE_MANAGER] | {subjects.CMD_RELOAD_POLICY}
# Comparing what runs with the declarations records what it finds: those who run environments ask for it.
for _role in (Role.SRE, Role.RELEASE_MANAGER):
    ROLE_COMMANDS[_role] = ROLE_COMMANDS[_role] | {subjects.CMD_CHECK_DRIFT}
# Exposing a flag changes what users see without a deployment: those who may abort a release may do it.
# Flags belong to an environment, not to a team's release, so the command is not team-scoped.
for _role in (Role.SRE, Role.DEVELOPER, Role.RELEASE_MANAGER):
    ROLE_COMMANDS[_role] = ROLE_COMMANDS[_role] | {subjects.CMD_CHANGE_FLAG}
TEAM_SCOPED_COMMANDS = frozenset({*subjects.STEERING_COMMANDS, subjects.CMD_RECORD_PIR})
ALL_TEAMS_ROLES = (Role.SRE,)
# Beyond ALL_TEAMS_ROLES: a release manager runs every team's releases, so reviews any of them.
ALL_TEAMS_ROLES_OF: dict[str, tuple[Role, ...]] = {subjects.CMD_RECORD_PIR: (Role.SRE, Role.RELEASE_MANAGER)}

PEOPLE_COMMANDS = frozenset().union(*ROLE_COMMANDS.values())


def every_team_roles(subject: str) -> tuple[Role, ...]:
    """The roles that send a team-scoped command for any team's release."""
    return ALL_TEAMS_ROLES_OF.get(subject, ALL_TEAMS_ROLES)


def command_name(subject: str) -> str:
    """`slipway.cmd.gatekeeper.freeze` -> `freeze`: how a reason names a command."""
    return subject.rsplit(".", 1)[-1]


def required_roles(subject: str) -> tuple[Role, ...]:
    return tuple(role for role, allowed in ROLE_COMMANDS.items() if subject in allowed)


def role_refusal(subject: str, signer: str, roles: Iterable[Role]) -> str | None:
    """Why `signer` may not send `subject` at all; None when one of their roles allows it."""
    held = tuple(roles)
    needed = required_roles(subject)
    if any(role in needed for role in held):
        return None
    wanted = " or ".join(role.value for role in needed) or "no role (it is not a person's command)"
    has = ", ".join(role.value for role in held) or "no role"
    return f"role {wanted} needed for {command_name(subject)}; {signer} has {has}"


def team_refusal(subject: str, signer: str, roles: Iterable[Role], teams: Iterable[str], team: str | None,
                 release_id: str) -> str | None:
    """Why `signer` may not act on this release of `team`; None when a role covers every team or it is theirs."""
    if subject not in TEAM_SCOPED_COMMANDS:
        return None
    allowing = [role for role in roles if subject in ROLE_COMMANDS.get(role, frozenset())]
    every_team = every_team_roles(subject)
    if any(role in every_team for role in allowing):
        return None
    own = tuple(teams)
    if team is not None and team in own:
        return None
    whose = f"release {release_id} is of team {team}" if team is not None else \
        f"the team of release {release_id} is not known"
    mine = ", ".join(own) or "no team"
    every = " or ".join(role.value for role in every_team)
    return (f"{signer} may {command_name(subject)} only releases of their own teams ({mine}); "
            f"{whose} (role {every} acts on every team)")
