"""Deployment rollouts, the parts without a server: the request, the ramp checks shared by
the activity and `opsready rollout start`, the rollback step, the command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.rollout import end_ramp
from opsready.deployment import (
    DeploymentStatus,
    DeploymentVersion,
    Routing,
    RoutingChange,
    control_build_of,
    ramp_refusal,
)
from opsready.errors import OpsreadyError
from starters.rollout_cli import register, state_text
from starters.rollout_request import id_of, request_from
from workflows.contract import ErrorType
from workflows.rollout_types import (
    DeploymentTarget,
    RolloutApproval,
    RolloutRequest,
    RolloutState,
)

OLD, NEW, OTHER = "1.0.0", "1.1.0", "1.2.0"


def status(
    current: str | None = OLD, ramping: str | None = None, percent: float = 0.0
) -> DeploymentStatus:
    return DeploymentStatus(
        deployment="ops",
        namespace="default",
        current=current,
        ramping=ramping,
        ramp_percentage=percent,
        previous=None,
        versions=[DeploymentVersion(build_id=b, status="inactive") for b in (OLD, NEW, OTHER)],
    )


# --- the request ----------------------------------------------------------------------------


def test_request_targets_a_flag_or_a_deployment_never_both() -> None:
    target = DeploymentTarget(deployment="ops", candidate_build=NEW)
    request = RolloutRequest(deployment=target, requested_by="me", approvers=["a"])
    assert request.workflow_id == "rollout-deploy-ops"
    with pytest.raises(ValidationError, match="either a flag or a Worker Deployment"):
        RolloutRequest(
            flag="f", candidate_variation=1, deployment=target, requested_by="me", approvers=["a"]
        )
    with pytest.raises(ValidationError, match="needs flag and candidate_variation"):
        RolloutRequest(flag="f", requested_by="me", approvers=["a"])
    with pytest.raises(ValidationError, match="builds must differ"):
        DeploymentTarget(deployment="ops", candidate_build=NEW, control_build=NEW)


def test_flag_request_payload_is_unchanged_by_the_deployment_field() -> None:
    request = RolloutRequest(flag="f", candidate_variation=1, requested_by="me", approvers=["a"])
    assert request.workflow_id == "rollout-f"
    assert "deployment" not in request.model_dump_json()
    state = RolloutState(flag="f", candidate_variation=1)
    assert "deployment" not in state.model_dump_json()


# --- the ramp checks ------------------------------------------------------------------------


def test_control_is_as_named_else_the_current_build_unless_that_is_the_candidate() -> None:
    assert control_build_of(status(), NEW, OTHER) == OTHER
    assert control_build_of(status(), NEW, None) == OLD
    assert control_build_of(status(current=NEW), NEW, None) is None


@pytest.mark.parametrize(
    ("routing", "candidate", "control", "refusal"),
    [
        (status(), NEW, OLD, None),
        (status(ramping=NEW, percent=5), NEW, OLD, None),  # its own ramp: the next stage
        (status(), "nope", OLD, "unknown build id 'nope' in Worker Deployment 'ops'"),
        (status(), NEW, "nope", "unknown build id 'nope' in Worker Deployment 'ops'"),
        (status(current=NEW), NEW, OLD, f"{NEW} is already the current build of ops"),
        (status(current=None), NEW, None, "ops has no current build to compare 1.1.0 with"),
        (status(), NEW, OTHER, f"the control build {OTHER} is not current in ops (current: "),
        (status(ramping=OTHER, percent=20), NEW, OLD, f"build {OTHER} is ramping in ops (20%)"),
    ],
)
def test_a_ramp_must_split_new_runs_between_the_current_control_and_the_candidate(
    routing: DeploymentStatus, candidate: str, control: str | None, refusal: str | None
) -> None:
    found = ramp_refusal(routing, candidate, control)
    if refusal is None:
        assert found is None
    else:
        assert found is not None and found.startswith(refusal), found


# --- the rollback step ----------------------------------------------------------------------


@dataclass
class FakeDeployment:
    """Records the routing writes `end_ramp` makes."""

    name: str = "ops"
    writes: list[tuple[str, str | None]] = field(default_factory=list)

    async def set_current(self, build: str) -> RoutingChange:
        self.writes.append(("set_current", build))
        return self._change(Routing(current=build))

    async def stop_ramp(self) -> RoutingChange:
        self.writes.append(("stop_ramp", None))
        return self._change(Routing(current=OLD))

    def _change(self, after: Routing) -> RoutingChange:
        return RoutingChange(deployment=self.name, before=Routing(current=None), after=after)


@pytest.mark.parametrize(
    ("routing", "writes"),
    [
        (status(ramping=NEW, percent=25), [("stop_ramp", None)]),
        (status(current=NEW), [("set_current", OLD)]),
        (status(ramping=OTHER, percent=25), []),  # another build's ramp is not ours to end
        (status(), []),
    ],
)
async def test_rollback_ends_the_candidates_ramp_or_makes_the_control_current_again(
    routing: DeploymentStatus, writes: list[tuple[str, str | None]]
) -> None:
    deployment = FakeDeployment()
    await end_ramp(deployment, routing, NEW, OLD)  # type: ignore[arg-type]
    assert deployment.writes == writes


async def test_rollback_of_a_current_candidate_without_a_known_control_is_refused() -> None:
    with pytest.raises(ApplicationError) as err:
        await end_ramp(FakeDeployment(), status(current=NEW), NEW, None)  # type: ignore[arg-type]
    assert err.value.type == ErrorType.INVALID_ROLLOUT and err.value.non_retryable
    assert "the build to go back to is unknown" in err.value.message


# --- the command line -----------------------------------------------------------------------


def start_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["rollout", "start", *argv, "--approver", "alice"])


def test_deployment_rollout_from_the_command_line() -> None:
    args = start_args("--deployment", "ops", "--candidate-build", NEW, "--stages", "50,100")
    request = request_from(args)
    assert request.deployment == DeploymentTarget(deployment="ops", candidate_build=NEW)
    assert (request.flag, request.plan.stages) == (None, [50, 100])
    assert request.workflow_id == "rollout-deploy-ops" == id_of("rollout-deploy-ops")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "what to roll out? give FLAG --candidate N (a flag rollout) or --deployment NAME"),
        (("f", "--deployment", "ops"), "FLAG and --deployment do not mix"),
        (("--candidate", "1", "--control-build", OLD), "--candidate and --control-build do not"),
        (("--candidate-build", NEW), "--candidate-build needs --deployment NAME"),
        (("--deployment", "ops"), "--deployment needs --candidate-build BUILD"),
        (("f",), "FLAG needs --candidate N"),
        (
            ("--deployment", "ops", "--candidate-build", NEW, "--control-build", NEW),
            "the candidate and control builds must differ",
        ),
        (("--deployment", "", "--candidate-build", NEW), "--deployment: String should have"),
    ],
)
def test_every_target_mistake_is_one_line(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(OpsreadyError) as err:
        request_from(start_args(*argv))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_status_of_a_deployment_rollout_names_the_builds_and_how_to_approve() -> None:
    approval = RolloutApproval(
        request_id="r1", percent=100, approvers=["alice"], requested_at=datetime.now(UTC)
    )
    state = RolloutState(
        status="awaiting_approval",
        deployment=DeploymentTarget(deployment="ops", candidate_build=NEW, control_build=OLD),
        stages=[50, 100],
        stage_index=1,
        percent=50,
        approval=approval,
    )
    text = state_text("rollout-deploy-ops", state)
    assert "candidate serves 50% of new runs of Worker Deployment ops" in text
    assert f"builds    candidate {NEW} vs control {OLD}" in text
    assert "opsready rollout approve rollout-deploy-ops --as NAME" in text
