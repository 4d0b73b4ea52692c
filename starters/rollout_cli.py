"""`opsready rollout`: start, follow, approve and abort canary rollouts of a flag variation
or of a worker build (a Worker Deployment ramp).

A rollout is the `CanaryRollout` workflow with id `rollout-FLAG` (or `rollout-deploy-NAME`
for Worker Deployment NAME), so one flag or deployment has at most one rollout running;
every command takes the flag key or the id.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from opsready.client import QUERY_TIMEOUT, describe_workflow, require_running
from opsready.deployment import WorkerDeployment, control_build_of, ramp_refusal
from opsready.errors import OpsreadyError, RunEndedError, error_parts
from opsready.flags import FlagNotFoundError, flag_store
from opsready.settings import Settings
from starters.cli_common import Command, Subcommands, connect_client, operator, print_json
from workflows.contract import ROLLOUT_WORKFLOW, Query, Signal, Update
from workflows.rollout_types import (
    ROLLOUT_ID_PREFIX,
    AbortRequest,
    DeploymentTarget,
    HealthGates,
    RolloutPlan,
    RolloutRequest,
    RolloutState,
    rollout_id,
)
from workflows.types import ApprovalDecision

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(commands: Subcommands) -> dict[str, Command]:
    rollout = commands.add_parser(
        "rollout",
        help="canary rollouts: move a flag or a worker build from control to candidate in stages",
        description="Move traffic of a flag from its control variation to a candidate (or new "
        "runs of a Worker Deployment from its current build to a candidate build) in stages, "
        "checking run health at each one; a person approves 100%. Failing health, a "
        "rejection or no answer rolls back to 0%.",
    )
    sub = rollout.add_subparsers(dest="rollout_command", metavar="SUBCOMMAND", required=True)

    start = sub.add_parser(
        "start",
        help="start a rollout of FLAG, or of a build with --deployment (one at a time each)",
        description="A flag rollout: FLAG --candidate N [--control N]. A worker build "
        "rollout: --deployment NAME --candidate-build BUILD [--control-build BUILD]; it ramps "
        "the build's share of new runs and compares runs by build id.",
    )
    start.add_argument("flag", metavar="FLAG", nargs="?", help="flag key, e.g. agent-variant")
    start.add_argument("--candidate", type=int, metavar="N", help="variation index to roll out")
    start.add_argument(
        "--control", type=int, metavar="N", help="variation to compare with (default: fallthrough)"
    )
    start.add_argument(
        "--deployment", metavar="NAME", help="Worker Deployment to ramp (instead of FLAG)"
    )
    start.add_argument("--candidate-build", metavar="BUILD", help="build id to roll out")
    start.add_argument(
        "--control-build",
        metavar="BUILD",
        help="build to compare with (default: the deployment's current build)",
    )
    start.add_argument("--agent", help="only this agent's runs count in the health checks")
    start.add_argument(
        "--stages", default="1,5,25,50,100", help="candidate percentages, ending at 100"
    )
    start.add_argument("--soak", default="10m", help="time per health check: 600, 90s, 10m, 1h")
    start.add_argument("--max-soaks", type=int, default=6, help="checks per stage (6)")
    start.add_argument("--min-samples", type=int, default=20, help="runs per cohort (20)")
    start.add_argument(
        "--approval-timeout", default="24h", help="wait this long for the approval of 100%%"
    )
    start.add_argument(
        "--approver",
        dest="approvers",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="who may approve 100%% (one or more; required)",
    )
    start.add_argument("--by", default=operator(), help="who starts it (default: login name)")
    start.add_argument("--json", action="store_true", help="print JSON")

    status = sub.add_parser("status", help="where a rollout stands and every check's numbers")
    status.add_argument("rollout", metavar="FLAG|ID")
    status.add_argument("--json", action="store_true", help="print JSON")

    for name, verb in (("approve", "approve"), ("reject", "reject (rolls back)")):
        decide = sub.add_parser(name, help=f"{verb} the step to 100%%")
        decide.add_argument("rollout", metavar="FLAG|ID")
        decide.add_argument("--as", dest="approver", required=True, help="who decides")
        decide.add_argument("--comment", help="why; kept in the rollout's state")
        decide.add_argument("--request-id", help="approval request id (default: the pending one)")
        decide.add_argument("--json", action="store_true", help="print the state as JSON")

    abort = sub.add_parser("abort", help="roll back to 0%% now, from any stage")
    abort.add_argument("rollout", metavar="FLAG|ID")
    abort.add_argument("--reason", required=True, help="why; kept in the rollout's state")
    abort.add_argument("--by", default=operator(), help="who aborts (default: login name)")
    return {"rollout": cmd_rollout}


async def cmd_rollout(args: argparse.Namespace, settings: Settings) -> int:
    if args.rollout_command == "start":
        request = request_from(args)
        if request.deployment is None:
            await _check_flag(request, settings)
        temporal = (await connect_client(args, settings)).temporal
        if request.deployment is not None:
            await _check_deployment(temporal, request.deployment)
        return await _start(temporal, request, settings, as_json=args.json)
    temporal = (await connect_client(args, settings)).temporal
    workflow_id = id_of(args.rollout)
    if args.rollout_command == "status":
        state = await rollout_state(temporal, workflow_id)
        if args.json:
            print_json(state)
        else:
            print(state_text(workflow_id, state))
        return 0
    await _require_running(temporal, workflow_id)
    if args.rollout_command == "abort":
        abort = _valid(AbortRequest, reason=args.reason, by=args.by)
        await _call(
            workflow_id, temporal.get_workflow_handle(workflow_id).signal(Signal.ABORT, abort)
        )
        print(f"abort sent to {workflow_id}: the candidate goes back to 0% now")
        return 0
    decision = _valid(
        ApprovalDecision,
        request_id=args.request_id,
        approved=args.rollout_command == "approve",
        approver=args.approver,
        comment=args.comment,
    )
    update = temporal.get_workflow_handle(workflow_id).execute_update(
        Update.DECIDE, decision, result_type=RolloutState
    )
    state = await _call(workflow_id, update)
    if args.json:
        print_json(state)
    else:
        verb = "approved" if decision.approved else "rejected"
        print(f"{verb} by {decision.approver}; {workflow_id} is now {state.status}")
    return 0


# --- building the request ----------------------------------------------------------------


def id_of(flag_or_id: str) -> str:
    """`rollout-FLAG` for a flag key; an id that already has the prefix (`rollout-FLAG`,
    `rollout-deploy-NAME`) as it is."""
    return flag_or_id if flag_or_id.startswith(ROLLOUT_ID_PREFIX) else rollout_id(flag_or_id)


def seconds_of(text: str, option: str) -> float:
    """`600`, `90s`, `10m`, `1.5h`, `2d` in seconds."""
    match = _DURATION.match(text.strip().lower())
    if match is None or float(match[1]) <= 0:
        raise OpsreadyError(f"{option}: {text!r} is not a duration like 600, 90s, 10m, 1h")
    return float(match[1]) * _UNIT_SECONDS[match[2]]


def stages_of(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise OpsreadyError(f"--stages: {text!r} is not a list like 1,5,25,50,100") from None


def request_from(args: argparse.Namespace) -> RolloutRequest:
    if not args.approvers:
        raise OpsreadyError("--approver NAME is required: a person approves the step to 100%")
    plan = _valid(
        RolloutPlan,
        stages=stages_of(args.stages),
        soak_seconds=seconds_of(args.soak, "--soak"),
        max_soaks_per_stage=args.max_soaks,
        approval_timeout_seconds=seconds_of(args.approval_timeout, "--approval-timeout"),
        gates=_valid(HealthGates, min_samples=args.min_samples),
    )
    request: RolloutRequest = _valid(
        RolloutRequest,
        **target_of(args),
        agent=args.agent,
        plan=plan,
        requested_by=args.by,
        approvers=args.approvers,
    )
    return request


_FLAG_OPTIONS = {"flag": "FLAG", "candidate": "--candidate", "control": "--control"}
_DEPLOY_OPTIONS = {
    "deployment": "--deployment",
    "candidate_build": "--candidate-build",
    "control_build": "--control-build",
}
_EITHER = (
    "FLAG --candidate N (a flag rollout) or --deployment NAME --candidate-build BUILD "
    "(a worker build rollout)"
)


def target_of(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields of the rollout's target: a flag's variations or a deployment's
    builds, never a mix; a missing or mixed option is one line naming it."""
    flag_given = [option for key, option in _FLAG_OPTIONS.items() if getattr(args, key) is not None]
    deploy_given = [
        option for key, option in _DEPLOY_OPTIONS.items() if getattr(args, key) is not None
    ]
    if flag_given and deploy_given:
        raise OpsreadyError(
            f"{flag_given[0]} and {deploy_given[0]} do not mix: a rollout moves either {_EITHER}"
        )
    if deploy_given:
        if args.deployment is None:
            raise OpsreadyError(f"{deploy_given[0]} needs --deployment NAME: the one to ramp")
        if args.candidate_build is None:
            raise OpsreadyError("--deployment needs --candidate-build BUILD: the build to roll out")
        target = _valid(
            DeploymentTarget,
            deployment=args.deployment,
            candidate_build=args.candidate_build,
            control_build=args.control_build,
        )
        return {"deployment": target}
    if args.flag is None:
        raise OpsreadyError(f"what to roll out? give {_EITHER}")
    if args.candidate is None:
        raise OpsreadyError("FLAG needs --candidate N: the variation to roll out")
    return {
        "flag": args.flag,
        "candidate_variation": args.candidate,
        "control_variation": args.control,
    }


# A model field -> the command-line option that sets it, for error messages.
_OPTIONS = {
    "flag": "FLAG",
    "candidate_variation": "--candidate",
    "control_variation": "--control",
    "deployment": "--deployment",
    "candidate_build": "--candidate-build",
    "control_build": "--control-build",
    "stages": "--stages",
    "max_soaks_per_stage": "--max-soaks",
    "min_samples": "--min-samples",
    "requested_by": "--by",
    "approvers": "--approver",
    "approver": "--as",
    "comment": "--comment",
    "request_id": "--request-id",
    "reason": "--reason",
    "by": "--by",
}


def _valid(model: Any, **values: Any) -> Any:
    """`model(**values)`, or an OpsreadyError naming the option at fault in one line."""
    try:
        return model(**values)
    except ValidationError as err:
        where, message, _ = error_parts(err)
        field = where.rsplit(".", 1)[-1]
        option = _OPTIONS.get(field, field)
        raise OpsreadyError(f"{option}: {message}" if option else message) from None


async def _check_flag(request: RolloutRequest, settings: Settings) -> None:
    """Refuse an unknown flag or variation now, when the flag store is reachable from here;
    otherwise the rollout itself refuses it (it ends `aborted`, with the same reason)."""
    assert request.flag is not None  # a flag rollout
    store = flag_store(settings)
    try:
        info = await store.get_flag(request.flag)
    except FlagNotFoundError:
        raise
    except Exception:
        return
    finally:
        await store.aclose()
    options = {"--candidate": request.candidate_variation, "--control": request.control_variation}
    for option, index in options.items():
        if index is not None and not 0 <= index < len(info.variations):
            choices = ", ".join(f"{i}={info.show(i)}" for i in range(len(info.variations)))
            raise OpsreadyError(f"{option}: {request.flag} has no variation {index} ({choices})")


async def _check_deployment(temporal: Client, target: DeploymentTarget) -> None:
    """Refuse now what the first ramp would refuse: an unknown deployment or build, a
    candidate already current, a control that is not current, another build's ramp."""
    status = await WorkerDeployment(temporal, target.deployment).status(count_runs=False)
    refusal = ramp_refusal(
        status,
        target.candidate_build,
        control_build_of(status, target.candidate_build, target.control_build),
    )
    if refusal is not None:
        raise OpsreadyError(refusal)


# --- talking to the workflow -------------------------------------------------------------


async def _start(
    temporal: Client, request: RolloutRequest, settings: Settings, *, as_json: bool
) -> int:
    workflow_id = request.workflow_id
    target = request.deployment
    stages = " > ".join(f"{s:g}%" for s in request.plan.stages)
    if target is None:
        subject = handle = str(request.flag)
        summary = f"canary {request.flag}: variation {request.candidate_variation}"
    else:
        subject, handle = f"Worker Deployment {target.deployment}", workflow_id
        summary = f"canary {target.deployment}: build {target.candidate_build}"
    try:
        await temporal.start_workflow(
            ROLLOUT_WORKFLOW,
            request,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=summary,
            static_details=f"stages {stages}; started by {request.requested_by}; approvers "
            f"{', '.join(request.approvers)}",
        )
    except WorkflowAlreadyStartedError:
        raise OpsreadyError(
            f"a rollout of {subject} is already running ({workflow_id}): see "
            f"`opsready rollout status {handle}`, or abort it first"
        ) from None
    except RPCError as err:
        raise OpsreadyError(f"cannot start {workflow_id}: {err.message}") from None
    if as_json:
        print_json({"rollout_id": workflow_id, "request": request.model_dump(mode="json")})
    else:
        print(workflow_id)
        print(f"  {stages}; follow it: opsready rollout status {handle}")
    return 0


async def _describe(temporal: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    return (
        await describe_workflow(temporal, workflow_id, ROLLOUT_WORKFLOW, "rollout", "a rollout")
    ).status


async def _require_running(temporal: Client, workflow_id: str) -> None:
    require_running(await _describe(temporal, workflow_id), workflow_id)


async def rollout_state(temporal: Client, workflow_id: str) -> RolloutState:
    """The `state` query while it runs; its result (the final state) once it has ended."""
    status = await _describe(temporal, workflow_id)
    handle = temporal.get_workflow_handle(workflow_id, result_type=RolloutState)
    if status is WorkflowExecutionStatus.RUNNING:
        query = handle.query(Query.STATE, result_type=RolloutState, rpc_timeout=QUERY_TIMEOUT)
        state: RolloutState = await _call(workflow_id, query)
        return state
    try:
        state = await handle.result()
    except WorkflowFailureError as err:
        ended = status.name.lower() if status else "failed"
        raise OpsreadyError(
            f"{workflow_id} ended {ended} without a final state: {err.cause or err}"
        ) from None
    return state


async def _call(workflow_id: str, call: Any) -> Any:
    """Await a query, signal or update, with Temporal's errors as one line each."""
    try:
        return await call
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise OpsreadyError(f"{workflow_id}: {getattr(cause, 'message', cause)}") from None
    except WorkflowQueryFailedError as err:
        raise OpsreadyError(f"the state query of {workflow_id} failed: {err}") from None
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise RunEndedError(f"{workflow_id} has already ended") from None
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise OpsreadyError(
                f"no worker answered for {workflow_id}: is `opsready worker` running?"
            ) from None
        raise OpsreadyError(f"{workflow_id}: {err.message}") from None


# --- output ------------------------------------------------------------------------------


def state_text(workflow_id: str, state: RolloutState) -> str:
    stages = " > ".join(
        f"[{s:g}%]" if i == state.stage_index and not state.is_terminal else f"{s:g}%"
        for i, s in enumerate(state.stages)
    )
    target = state.deployment
    if target is None:
        control = "fallthrough" if state.control_variation is None else state.control_variation
        serves = f"candidate serves {state.percent:g}% of {state.flag}"
        sides = f"variants  candidate {state.candidate_variation} vs control {control}"
        handle = str(state.flag)
    else:
        serves = (
            f"candidate serves {state.percent:g}% of new runs of Worker Deployment "
            f"{target.deployment}"
        )
        control = target.control_build or "the current build"
        sides = f"builds    candidate {target.candidate_build} vs control {control}"
        handle = workflow_id
    lines = [
        f"rollout   {workflow_id}",
        f"status    {state.status}: {serves}",
        sides,
        f"stages    {stages}",
    ]
    if state.next_check_at is not None:
        lines.append(
            f"next      check {state.soaks + 1} at {state.next_check_at:%Y-%m-%d %H:%M:%S}Z"
        )
    if state.reason:
        lines.append(f"reason    {state.reason}")
    approval = state.approval
    if approval is not None and approval.outcome == "pending":
        lines.append(f"waiting   approval of 100% from {', '.join(approval.approvers)}")
        lines.append(f"          opsready rollout approve {handle} --as NAME  (or reject)")
    elif approval is not None:
        by = f" by {approval.approver}" if approval.approver else ""
        comment = f' "{approval.comment}"' if approval.comment else ""
        lines.append(f"approval  100% {approval.outcome}{by}{comment}")
    for d in state.decisions:
        c, k = d.candidate, d.control
        lines.append(
            f"check     {d.stage_percent:g}% #{d.soak} {d.decision}: candidate {c.runs} runs "
            f"{c.success_rate:.1%} ok, control {k.runs} runs {k.success_rate:.1%} ok"
        )
        lines.extend(f"            {reason}" for reason in d.reasons)
    return "\n".join(lines)
