"""`opsready rollout`: start, follow, approve and abort canary rollouts of a flag variation
or of a worker build (a Worker Deployment ramp).

A rollout is the `CanaryRollout` workflow with id `rollout-FLAG` (or `rollout-deploy-NAME`
for Worker Deployment NAME), so one flag or deployment has at most one rollout running;
every command takes the flag key or the id.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

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

from opsready.client import QUERY_TIMEOUT
from opsready.errors import OpsreadyError, RunEndedError
from opsready.runs import describe_workflow, require_running
from opsready.settings import Settings
from starters.cli_common import (
    JSON_OUTPUT,
    TEMPORAL,
    Subcommands,
    add_command,
    add_group,
    connect_client,
    operator,
    print_json,
)
from starters.rollout_request import check_deployment, check_flag, id_of, request_from, valid
from workflows.contract import ROLLOUT_WORKFLOW, Query, Signal, Update
from workflows.rollout_types import AbortRequest, RolloutRequest, RolloutState
from workflows.types import ApprovalDecision


def register(commands: Subcommands) -> None:
    rollout = add_group(
        commands,
        "rollout",
        help="canary rollouts: move a flag or a worker build from control to candidate in stages",
        description="Move traffic of a flag from its control variation to a candidate (or new "
        "runs of a Worker Deployment from its current build to a candidate build) in stages, "
        "checking run health at each one; a person approves 100%. Failing health, a "
        "rejection or no answer rolls back to 0%.",
    )
    start = add_command(
        rollout,
        "start",
        cmd_start,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="start a rollout of FLAG, or of a build with --deployment (one at a time each)",
        description="A flag rollout: FLAG --candidate N [--control N]. A worker build "
        "rollout: --deployment NAME --candidate-build BUILD [--control-build BUILD]; it ramps "
        "the build's share of new runs and compares runs by build id.",
    )
    _start_options(start)

    status = add_command(
        rollout,
        "status",
        cmd_status,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="where a rollout stands and every check's numbers",
    )
    status.add_argument("rollout", metavar="FLAG|ID")

    for name, approved, verb in (
        ("approve", True, "approve"),
        ("reject", False, "reject (rolls back)"),
    ):
        decide = add_command(
            rollout,
            name,
            cmd_decide,
            parents=(TEMPORAL, JSON_OUTPUT),
            help=f"{verb} the step to 100%%",
        )
        decide.set_defaults(approved=approved)
        decide.add_argument("rollout", metavar="FLAG|ID")
        decide.add_argument("--as", dest="approver", required=True, help="who decides")
        decide.add_argument("--comment", help="why; kept in the rollout's state")
        decide.add_argument("--request-id", help="approval request id (default: the pending one)")

    abort = add_command(
        rollout,
        "abort",
        cmd_abort,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="roll back to 0%% now, from any stage",
    )
    abort.add_argument("rollout", metavar="FLAG|ID")
    abort.add_argument("--reason", required=True, help="why; kept in the rollout's state")
    abort.add_argument("--by", default=operator(), help="who aborts (default: login name)")


def _start_options(start: argparse.ArgumentParser) -> None:
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


async def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    request = request_from(args)
    if request.deployment is None:
        await check_flag(request, settings)
    temporal = (await connect_client(args, settings)).temporal
    if request.deployment is not None:
        await check_deployment(temporal, request.deployment)
    return await _start(temporal, request, settings, as_json=args.json)


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    temporal = (await connect_client(args, settings)).temporal
    workflow_id = id_of(args.rollout)
    state = await rollout_state(temporal, workflow_id)
    if args.json:
        print_json(state)
    else:
        print(state_text(workflow_id, state))
    return 0


async def cmd_abort(args: argparse.Namespace, settings: Settings) -> int:
    temporal = (await connect_client(args, settings)).temporal
    workflow_id = id_of(args.rollout)
    await _require_running(temporal, workflow_id)
    abort = valid(AbortRequest, reason=args.reason, by=args.by)
    await _call(workflow_id, temporal.get_workflow_handle(workflow_id).signal(Signal.ABORT, abort))
    if args.json:
        print_json({"rollout_id": workflow_id, "abort": abort.model_dump(mode="json")})
    else:
        print(f"abort sent to {workflow_id}: the candidate goes back to 0% now")
    return 0


async def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    temporal = (await connect_client(args, settings)).temporal
    workflow_id = id_of(args.rollout)
    await _require_running(temporal, workflow_id)
    decision = valid(
        ApprovalDecision,
        request_id=args.request_id,
        approved=args.approved,
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
            f"`opsready rollout status {shlex.quote(handle)}`, or abort it first"
        ) from None
    except RPCError as err:
        raise OpsreadyError(f"cannot start {workflow_id}: {err.message}") from None
    if as_json:
        print_json({"rollout_id": workflow_id, "request": request.model_dump(mode="json")})
    else:
        print(workflow_id)
        print(f"  {stages}; follow it: opsready rollout status {shlex.quote(handle)}")
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
        lines.append(
            f"          opsready rollout approve {shlex.quote(handle)} --as NAME  (or reject)"
        )
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
