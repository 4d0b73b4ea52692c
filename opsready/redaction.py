"""Redaction of secrets and personal data, shared by logs, span attributes and metric labels.

The rules are one set, in `workflows.redaction` (pure, so workflow code applies them to
the memo, current details and failure messages it shows): `redact_text` masks API keys,
bearer tokens, passwords, e-mail addresses, phone numbers and card numbers in any string;
`find_sensitive` reports the same matches (kind, span, text) for guardrails that decide
what to do with them; `mask_sensitive` masks a chosen subset. `Redactor` adds the field
names of OPSREADY_REDACT_FIELDS to the built-in sensitive fields, masked whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opsready.settings import LogSettings
from workflows.redaction import (
    MASK,
    PII_KINDS,
    SECRET_KINDS,
    SENSITIVE_FIELDS,
    Finding,
    UserAttribute,
    find_sensitive,
    is_sensitive_field,
    mask_sensitive,
    pseudonymous_user,
    redact,
    redact_text,
)

__all__ = [
    "MASK",
    "PII_KINDS",
    "SECRET_KINDS",
    "Finding",
    "Redactor",
    "UserAttribute",
    "find_sensitive",
    "mask_sensitive",
    "pseudonymous_user",
    "redact_text",
]


# Field names whose verdict a `Redactor` remembers: log keys and attribute names are a small
# fixed set, and the check runs for every field of every log line and span.
_REMEMBERED_FIELDS = 4096
_PLAIN = (int, float, bool, type(None))


class Redactor:
    """Masks sensitive values; `extra_fields` adds field names to always mask whole."""

    def __init__(self, extra_fields: Iterable[str] = ()) -> None:
        self.fields = SENSITIVE_FIELDS | {f.strip().lower() for f in extra_fields if f.strip()}
        self._verdicts: dict[str, bool] = {}

    @classmethod
    def from_env(cls) -> Redactor:
        """With the extra fields of OPSREADY_REDACT_FIELDS (comma-separated)."""
        return cls(LogSettings.from_env().redact_fields)

    def is_sensitive_field(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            verdict = is_sensitive_field(name, self.fields)
            if len(self._verdicts) < _REMEMBERED_FIELDS:
                self._verdicts[name] = verdict
        return verdict

    def redact(self, value: Any, field: str | None = None) -> Any:
        """`redact` with this redactor's fields; the field's verdict remembered, and the
        common values (strings, numbers) taken without the walk."""
        if field is not None and self.is_sensitive_field(field):
            return MASK
        if type(value) is str:
            return redact_text(value)
        if type(value) in _PLAIN:
            return value
        return redact(value, None, self.fields)
