"""`opsready rollout start`'s request, from the command line: durations, stages, the target
(a flag's variations or a Worker Deployment's builds), and the checks that refuse a bad
rollout before it starts, each as one line naming the option at fault."""

from __future__ import annotations

import argparse
import re
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client

from opsready.deployment import WorkerDeployment, control_build_of, ramp_refusal
from opsready.errors import OpsreadyError, error_parts
from opsready.flags import FlagNotFoundError, flag_store
from opsready.settings import Settings
from workflows.rollout_types import (
    ROLLOUT_ID_PREFIX,
    DeploymentTarget,
    HealthGates,
    RolloutPlan,
    RolloutRequest,
    rollout_id,
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


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
    plan = valid(
        RolloutPlan,
        stages=stages_of(args.stages),
        soak_seconds=seconds_of(args.soak, "--soak"),
        max_soaks_per_stage=args.max_soaks,
        approval_timeout_seconds=seconds_of(args.approval_timeout, "--approval-timeout"),
        gates=valid(HealthGates, min_samples=args.min_samples),
    )
    request: RolloutRequest = valid(
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
        target = valid(
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


def valid(model: Any, **values: Any) -> Any:
    """`model(**values)`, or an OpsreadyError naming the option at fault in one line."""
    try:
        return model(**values)
    except ValidationError as err:
        where, message, _ = error_parts(err)
        field = where.rsplit(".", 1)[-1]
        option = _OPTIONS.get(field, field)
        raise OpsreadyError(f"{option}: {message}" if option else message) from None


async def check_flag(request: RolloutRequest, settings: Settings) -> None:
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


async def check_deployment(temporal: Client, target: DeploymentTarget) -> None:
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
