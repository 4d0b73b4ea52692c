"""Redaction of secrets and personal data, shared by logs, span attributes and metric labels.

One function, `redact`, masks API keys, bearer tokens, passwords, e-mail addresses, phone
numbers and card numbers in any string, and the whole value of any field whose name is
sensitive (built in, plus OPSREADY_REDACT_FIELDS). It walks dicts, lists and tuples.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from opsready.settings import LogSettings

MASK = "[REDACTED]"

_SENSITIVE_FIELDS = frozenset(
    {
        "api_key",
        "apikey",
        "authorization",
        "password",
        "passwd",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "private_key",
        "openai_api_key",
        "sdk_key",
        "card_number",
        "cvv",
        "ssn",
    }
)

# Order matters: specific secrets first, then generic shapes.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        MASK,
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(r"\b(sk|pk|rk)-(?:[A-Za-z0-9_-]+-)?[A-Za-z0-9_-]{16,}\b"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (re.compile(r"\b(?:ghp|gho|ghs|github_pat|xox[abpr])_[A-Za-z0-9_-]{16,}\b"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"), MASK),
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|token|sdk[_-]?key)"
            r"(\s*[:=]\s*|\s+is\s+)(\"[^\"]*\"|'[^']*'|\S+)"
        ),
        r"\1\2" + MASK,
    ),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
]
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_PHONE = re.compile(r"(?<![\w.])\+?\d{1,3}?[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?![\w.])")


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[PHONE]" if 8 <= len(digits) <= 15 else match.group(0)


def redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _CARD.sub(_mask_card, text)
    return _PHONE.sub(_mask_phone, text)


class Redactor:
    """Masks sensitive values; `extra_fields` adds field names to always mask whole."""

    def __init__(self, extra_fields: Iterable[str] = ()) -> None:
        self.fields = _SENSITIVE_FIELDS | {f.strip().lower() for f in extra_fields if f.strip()}

    @classmethod
    def from_env(cls) -> Redactor:
        """With the extra fields of OPSREADY_REDACT_FIELDS (comma-separated)."""
        return cls(LogSettings.from_env().redact_fields)

    def is_sensitive_field(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in self.fields or lowered.rsplit(".", 1)[-1] in self.fields

    def redact(self, value: Any, field: str | None = None) -> Any:
        if field is not None and self.is_sensitive_field(field):
            return MASK
        if isinstance(value, str):
            return redact_text(value)
        if isinstance(value, dict):
            return {k: self.redact(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact(v) for v in value)
        return value
