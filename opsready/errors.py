"""User-facing errors: each carries a one-line message the CLI prints as it is."""

from __future__ import annotations


class OpsreadyError(Exception):
    """Base of every error a user can cause and fix (bad input, unknown names, bad config)."""

    exit_code = 2


class ConfigError(OpsreadyError):
    """Settings, agent definitions or pricing are invalid."""


class UnknownAgentError(OpsreadyError):
    """No agent definition with that name."""


class RunNotFoundError(OpsreadyError):
    """No run with that id."""

    exit_code = 3


class NotAwaitingApprovalError(OpsreadyError):
    """An approval was sent to a run that waits for none (or for another request)."""


class TemporalUnavailableError(OpsreadyError):
    """The Temporal server cannot be reached."""

    exit_code = 4


class RunEndedError(OpsreadyError):
    """A decision or halt was sent to a run that has already ended."""
