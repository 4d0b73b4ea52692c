"""Types of the `SideEffect` entity workflow: the shared record of one write or destructive
tool call, by its idempotency key (the ledger workers on several hosts share)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EffectStart(_Model):
    key: str
    tool: str


class EffectResult(_Model):
    """What the tool returned (`ok`, `output`, `error`), kept for every retry of the key."""

    result: dict[str, Any]


class EffectStatus(_Model):
    """`attempts`: how many attempts began (the intent, recorded before each call). More
    than one without a result: an earlier attempt was interrupted, and whether it reached
    the downstream system only that system knows (by the key)."""

    key: str
    tool: str
    attempts: int = 0
    result: dict[str, Any] | None = None
    began_at: datetime | None = None
    completed_at: datetime | None = None
    history: list[datetime] = Field(default_factory=list)  # when each attempt began
