"""Every error a user of opsready can cause and fix, in one tree.

Each carries a one-line message that the CLI prints as it is, and an exit code:

    OpsreadyError                      2  bad input or configuration
    ├── ConfigError                    2  settings, agent definitions, pricing, flag files
    ├── UnknownAgentError              2  no agent definition with that name
    ├── UnknownVersionError            2  no archived agent definition with that version
    ├── RunNotFoundError               3  no run (or rollout) with that id
    ├── RunEndedError                  2  a decision or halt for a run that has ended
    ├── NotAwaitingApprovalError       2  a decision the run refused (none pending, stale id,
    │                                     approver without the right)
    ├── RequestIdReusedError           2  a request id already used for a different text
    ├── TemporalUnavailableError       4  the Temporal server cannot be reached
    ├── NoWorkerError                  5  no worker serves the run's build: a decision was
    │                                     not delivered, or a halt waits for a worker
    ├── FlagNotFoundError              2  no flag with that key (with close matches)
    ├── FlagChangeError                2  a change a flag cannot take
    ├── LaunchDarklyError              2  LaunchDarkly refused a request
    │   └── LaunchDarklyUnavailableError 4  LaunchDarkly unreachable or failing: retry later
    └── DeploymentError                2  a Worker Deployment change that cannot be made
        ├── DeploymentNotFoundError    3  no Worker Deployment of that name
        ├── UnknownBuildError          3  the deployment has no such build
        ├── DeploymentChangedError     2  changed between read and write (conflict token)
        └── NoPreviousVersionError     2  `rollback` found nothing to go back to

Failures a retry cannot fix inside a run are not here: activities raise Temporal
`ApplicationError(non_retryable=True, type=ErrorType...)` (workflows.contract).
"""

from __future__ import annotations

from pydantic import ValidationError


class OpsreadyError(Exception):
    """Base of every error a user can cause and fix (bad input, unknown names, bad config)."""

    exit_code = 2


class ConfigError(OpsreadyError):
    """Settings, agent definitions, pricing or flag files are invalid."""


class UnknownAgentError(OpsreadyError):
    """No agent definition with that name."""


class UnknownVersionError(OpsreadyError):
    """No archived agent definition with that version."""


class RunNotFoundError(OpsreadyError):
    """No run with that id."""

    exit_code = 3


class RunEndedError(OpsreadyError):
    """A decision or halt was sent to a run that has already ended."""


class NotAwaitingApprovalError(OpsreadyError):
    """An approval was sent to a run that waits for none (or for another request)."""


class RequestIdReusedError(OpsreadyError):
    """A start reused a request id whose run was started for a different text."""


class NoWorkerError(OpsreadyError):
    """No worker took a decision or halt in time: none serves the run's build (the message
    says what became of the decision and which worker to start)."""

    exit_code = 5


class TemporalUnavailableError(OpsreadyError):
    """The Temporal server cannot be reached."""

    exit_code = 4


class FlagNotFoundError(OpsreadyError):
    """No flag with that key (the message lists close matches)."""


class FlagChangeError(OpsreadyError):
    """A change a flag cannot take: an unknown variation, bad percentages, a bad scope."""


class LaunchDarklyError(OpsreadyError):
    """LaunchDarkly refused a request: the token, its permissions, or the change itself."""


class LaunchDarklyUnavailableError(LaunchDarklyError):
    """LaunchDarkly is unreachable, rate limited or failing: retry later."""

    exit_code = 4


class DeploymentError(OpsreadyError):
    """A Worker Deployment change that cannot be made as asked."""


class DeploymentNotFoundError(DeploymentError):
    """No Worker Deployment of that name: no versioned worker of it has polled yet."""

    exit_code = 3


class UnknownBuildError(DeploymentError):
    """The deployment has no version with that build id."""

    exit_code = 3


class DeploymentChangedError(DeploymentError):
    """The deployment changed between reading it and writing to it (conflict token)."""


class NoPreviousVersionError(DeploymentError):
    """`rollback` found no version that was current before the present one."""


def error_parts(err: ValidationError) -> tuple[str, str, str]:
    """The first problem of a pydantic error: (dotted field path, message, error type), the
    message without pydantic's "Value error, " prefix."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return where, first["msg"].removeprefix("Value error, "), first["type"]


def one_line(err: ValidationError, *, default_field: str = "input") -> str:
    """A pydantic error as the one line a user reads: `field.path: message`."""
    where, message, _ = error_parts(err)
    return f"{where or default_field}: {message}"
