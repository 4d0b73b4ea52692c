"""Typed inputs, state, signals and activity payloads of the `CanaryRollout` workflow.

Shared by the workflow, its activities and the `opsready rollout` commands. Field names are
part of the public contract: running rollouts and service code depend on them.
"""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ROLLOUT_ID_PREFIX = "rollout-"
DEPLOY_ROLLOUT_ID_PREFIX = f"{ROLLOUT_ID_PREFIX}deploy-"

RolloutStatus = Literal[
    "starting", "soaking", "awaiting_approval", "promoted", "rolled_back", "aborted"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"promoted", "rolled_back", "aborted"})
StageVerdict = Literal["promote", "hold", "rollback"]


def rollout_id(flag: str) -> str:
    """One rollout per flag at a time: the workflow id is derived from the flag key."""
    return f"{ROLLOUT_ID_PREFIX}{flag}"


def deploy_rollout_id(deployment: str) -> str:
    """One rollout per Worker Deployment at a time, likewise."""
    return f"{DEPLOY_ROLLOUT_ID_PREFIX}{deployment}"


def _is_none(value: object) -> bool:
    return value is None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the request -------------------------------------------------------------------------


class HealthGates(_Model):
    """When a stage's candidate cohort is healthy enough, compared with the control cohort."""

    min_samples: int = Field(default=20, ge=1)  # runs per cohort before anything is judged
    max_success_rate_drop: float = Field(default=0.05, ge=0, le=1)
    max_safety_rate_increase: float = Field(default=0.05, ge=0)  # safety events per run
    max_cost_ratio: float = Field(default=1.5, gt=0)  # cost per successful run, cand/control
    max_latency_ratio: float = Field(default=1.5, gt=0)  # median run latency, cand/control


class RolloutPlan(_Model):
    stages: list[float] = Field(default_factory=lambda: [1.0, 5.0, 25.0, 50.0, 100.0])
    soak_seconds: float = Field(default=600.0, gt=0)
    max_soaks_per_stage: int = Field(default=6, ge=1)
    approval_timeout_seconds: float = Field(default=86_400.0, gt=0)
    gates: HealthGates = Field(default_factory=HealthGates)

    @field_validator("stages")
    @classmethod
    def _stages_climb_to_100(cls, stages: list[float]) -> list[float]:
        if not stages:
            raise ValueError("at least one stage is needed, and the last one is 100")
        if any(not 0 < s <= 100 for s in stages):
            raise ValueError("every stage is a percentage in (0, 100]")
        if any(b <= a for a, b in pairwise(stages)):
            raise ValueError("stages must increase")
        if stages[-1] != 100:
            raise ValueError("the last stage must be 100")
        return stages


class DeploymentTarget(_Model):
    """A rollout of a worker build: a Worker Deployment ramp instead of a flag's split. The
    candidate build gets the stage's share of new runs; the cohorts are run outcomes by
    build id."""

    deployment: str = Field(min_length=1, max_length=200)
    candidate_build: str = Field(min_length=1, max_length=255)
    # None: the deployment's current build when the rollout starts (the first ramp finds it).
    control_build: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _control_differs(self) -> DeploymentTarget:
        if self.control_build == self.candidate_build:
            raise ValueError("the candidate and control builds must differ")
        return self


class RolloutRequest(_Model):
    """A flag rollout (`flag` and `candidate_variation`, as always) or, with `deployment`,
    a Worker Deployment ramp; never both."""

    flag: str | None = Field(default=None, min_length=1, max_length=200)
    candidate_variation: int | None = Field(default=None, ge=0)
    control_variation: int | None = Field(default=None, ge=0)  # None: the flag's fallthrough
    # Left out of the payload when None, so a flag rollout's input is what it always was
    # (workers and starters without deployment rollouts read it as before).
    deployment: DeploymentTarget | None = Field(default=None, exclude_if=_is_none)
    agent: str | None = None  # only this agent's run outcomes count
    plan: RolloutPlan = Field(default_factory=RolloutPlan)
    requested_by: str = Field(min_length=1, max_length=200)
    approvers: list[str] = Field(min_length=1)  # who may approve the step to 100%

    @model_validator(mode="after")
    def _one_target(self) -> RolloutRequest:
        flag_fields = (self.flag, self.candidate_variation, self.control_variation)
        if self.deployment is not None:
            if any(value is not None for value in flag_fields):
                raise ValueError(
                    "a rollout moves either a flag or a Worker Deployment: give deployment, "
                    "or flag and candidate_variation, not both"
                )
            return self
        if self.flag is None or self.candidate_variation is None:
            raise ValueError(
                "a flag rollout needs flag and candidate_variation (or give deployment)"
            )
        if self.control_variation == self.candidate_variation:
            raise ValueError("the candidate and control variations must differ")
        return self

    @property
    def workflow_id(self) -> str:
        if self.deployment is not None:
            return deploy_rollout_id(self.deployment.deployment)
        assert self.flag is not None  # validated
        return rollout_id(self.flag)


class AbortRequest(_Model):
    """Payload of the `abort` signal: roll back now."""

    reason: str = Field(min_length=1, max_length=2_000)
    by: str = Field(min_length=1, max_length=200)


# --- cohorts and their health ------------------------------------------------------------


class Cohort(_Model):
    """Which recorded run outcomes to count. Flag selectors need `flag`; the build-id
    selectors let a Worker Deployment ramp use the same gates."""

    flag: str | None = None
    variation: int | None = None
    exclude_variation: int | None = None
    build_id: str | None = None
    exclude_build_id: str | None = None
    agent: str | None = None
    since: datetime


class CohortStats(_Model):
    runs: int = 0
    successes: int = 0
    success_rate: float = 0.0
    safety_events_per_run: float = 0.0
    cost_per_success_usd: float | None = None  # None when no run succeeded
    median_latency_s: float = 0.0


class StageDecision(_Model):
    stage_percent: float
    decided_at: datetime
    decision: StageVerdict
    reasons: list[str]
    candidate: CohortStats
    control: CohortStats
    soak: int = 1  # which soak of this stage the decision ended


class RolloutApproval(_Model):
    """The human step before 100%: what was asked, of whom, and what came of it."""

    request_id: str
    percent: float
    approvers: list[str]
    requested_at: datetime
    outcome: Literal["pending", "approved", "rejected", "timed_out", "aborted"] = "pending"
    approver: str | None = None
    comment: str | None = None
    decided_at: datetime | None = None


class RolloutState(_Model):
    """The `state` query and the workflow's result. A flag rollout fills the flag fields; a
    deployment rollout `deployment` (its control build once the first ramp resolved it)."""

    status: RolloutStatus = "starting"
    flag: str | None = None
    candidate_variation: int | None = None
    control_variation: int | None = None
    deployment: DeploymentTarget | None = Field(default=None, exclude_if=_is_none)
    stage_index: int = 0
    stages: list[float] = Field(default_factory=list)
    percent: float = 0.0  # what the candidate serves now
    soaks: int = 0  # soaks done in the current stage
    next_check_at: datetime | None = None  # while soaking: when the cohorts are compared
    decisions: list[StageDecision] = Field(default_factory=list)
    approval: RolloutApproval | None = None
    reason: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


# --- activity payloads -------------------------------------------------------------------


class SetRolloutInput(_Model):
    flag: str
    candidate_variation: int
    control_variation: int | None = None  # None: the flag's fallthrough variation now
    percent: float = Field(ge=0, le=100)  # the candidate's share; control gets the rest


class SetRolloutResult(_Model):
    flag: str
    version: int
    candidate_variation: int
    control_variation: int
    percent: float
    rollout: dict[int, float]


class SetDeploymentRampInput(_Model):
    deployment: str
    candidate_build: str
    control_build: str | None = None  # None: the deployment's current build now
    # The candidate's share of new runs: 100 makes it current; 0 ends its ramp and, when it
    # has become current, makes the control build current again.
    percent: float = Field(ge=0, le=100)


class SetDeploymentRampResult(_Model):
    deployment: str
    candidate_build: str
    control_build: str | None  # None only on a rollback that never learnt it
    percent: float
    current: str | None  # the routing after the change (None: unversioned workers)
    ramping: str | None
    ramp_percentage: float


class CompareCohortsInput(_Model):
    candidate: Cohort
    control: Cohort


class CohortComparison(_Model):
    candidate: CohortStats
    control: CohortStats
