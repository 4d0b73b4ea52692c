"""Redaction of secrets and personal data: the one set of rules, pure and deterministic.

`redact_text` masks API keys, bearer tokens, passwords, e-mail addresses, phone numbers
and card numbers in any string; `redact` also walks dicts and lists and masks the whole
value of a sensitive field. Workflow code applies them to everything a run shows outside
its history (memo, current details, failure messages); `opsready.redaction` applies the
same rules to log fields, span attributes and metric labels, with extra field names from
the settings. `pseudonymous_user` keeps personal data out of the `AgentUser` attribute.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

MASK = "[REDACTED]"

SENSITIVE_FIELDS = frozenset(
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


@dataclass(frozen=True)
class _Rule:
    kind: str  # what `find_sensitive` calls a match (see SECRET_KINDS, PII_KINDS)
    pattern: re.Pattern[str]
    replacement: str  # what `redact_text` puts instead
    value_group: int = 0  # the group holding the sensitive value; the rest is kept


# Order matters: specific secrets first, then generic shapes.
_RULES: list[_Rule] = [
    _Rule(
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        MASK,
    ),
    _Rule(
        "auth_header",
        re.compile(r"(?i)\b(bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})"),
        r"\1 " + MASK,
        2,
    ),
    _Rule("api_key", re.compile(r"\b(sk|pk|rk)-(?:[A-Za-z0-9_-]+-)?[A-Za-z0-9_-]{16,}\b"), MASK),
    _Rule("cloud_key", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    _Rule(
        "access_token",
        re.compile(r"\b(?:ghp|gho|ghs|github_pat|xox[abpr])_[A-Za-z0-9_-]{16,}\b"),
        MASK,
    ),
    _Rule(
        "jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"), MASK
    ),
    _Rule(
        "credential",
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|token|sdk[_-]?key)"
            r"(\s*[:=]\s*|\s+is\s+)(\"[^\"]*\"|'[^']*'|\S+)"
        ),
        r"\1\2" + MASK,
        3,
    ),
    _Rule("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
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


def _is_card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


def _is_phone(text: str) -> bool:
    return 8 <= len(re.sub(r"\D", "", text)) <= 15


def _mask_card(match: re.Match[str]) -> str:
    return "[CARD]" if _is_card(match.group(0)) else match.group(0)


def _mask_phone(match: re.Match[str]) -> str:
    return "[PHONE]" if _is_phone(match.group(0)) else match.group(0)


def redact_text(text: str) -> str:
    # Telemetry redacts the same short values (agent, model, tool and event names) on every
    # call: those are remembered; long texts (messages, outputs) are rarely repeated. A pure
    # function of its text, so the cache is safe in workflow code too.
    return _redact_short(text) if len(text) <= _CACHED_LENGTH else _redact(text)


def _redact(text: str) -> str:
    for rule in _RULES:
        text = rule.pattern.sub(rule.replacement, text)
    text = _CARD.sub(_mask_card, text)
    return _PHONE.sub(_mask_phone, text)


_CACHED_LENGTH = 256
_redact_short = functools.lru_cache(maxsize=8192)(_redact)


SECRET_KINDS = frozenset(
    {"private_key", "auth_header", "api_key", "cloud_key", "access_token", "jwt", "credential"}
)
PII_KINDS = frozenset({"email", "card", "phone"})
_LABELS = {"email": "[EMAIL]", "card": "[CARD]", "phone": "[PHONE]"}


@dataclass(frozen=True)
class Finding:
    """One sensitive value in a text: its kind, where it is (`text[start:end]`) and what."""

    kind: str
    span: tuple[int, int]
    text: str

    @property
    def is_secret(self) -> bool:
        return self.kind in SECRET_KINDS

    @property
    def label(self) -> str:
        """What `mask_sensitive` writes in its place (the same masks `redact_text` uses)."""
        return _LABELS.get(self.kind, MASK)


def find_sensitive(text: str) -> list[Finding]:
    """Every secret and personal value `redact_text` would mask, in text order.

    Same rules in the same precedence: where two matches overlap, the earlier rule wins.
    """
    found: list[Finding] = []

    def add(kind: str, start: int, end: int) -> None:
        if not any(start < f.span[1] and f.span[0] < end for f in found):
            found.append(Finding(kind, (start, end), text[start:end]))

    for rule in _RULES:
        for match in rule.pattern.finditer(text):
            add(rule.kind, match.start(rule.value_group), match.end(rule.value_group))
    for kind, pattern, is_valid in (("card", _CARD, _is_card), ("phone", _PHONE, _is_phone)):
        for match in pattern.finditer(text):
            if is_valid(match.group(0)):
                add(kind, match.start(), match.end())
    return sorted(found, key=lambda f: f.span)


def mask_sensitive(text: str, findings: Iterable[Finding] | None = None) -> str:
    """`text` with each finding (default: all of them) replaced by its label."""
    chosen = find_sensitive(text) if findings is None else findings
    for finding in sorted(chosen, key=lambda f: f.span, reverse=True):
        start, end = finding.span
        text = text[:start] + finding.label + text[end:]
    return text


def redact(value: Any, field: str | None = None, fields: frozenset[str] = SENSITIVE_FIELDS) -> Any:
    """`value` with secrets and personal data masked; a field named in `fields` (or whose
    last dotted part is) is masked whole. Walks dicts, lists and tuples."""
    if field is not None and is_sensitive_field(field, fields):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k), fields) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v, None, fields) for v in value)
    return value


def is_sensitive_field(name: str, fields: frozenset[str] = SENSITIVE_FIELDS) -> bool:
    lowered = name.lower()
    return lowered in fields or lowered.rsplit(".", 1)[-1] in fields


# --- the AgentUser search attribute ---------------------------------------------------------

UserAttribute = Literal["pseudonym", "hash", "raw"]
"""How a run's user id is shown in `AgentUser` (and the start memo): `pseudonym` (the
default) replaces ids that look like personal data (an e-mail address, a phone or card
number, a secret) by `user-<hash>`; `hash` replaces every id; `raw` keeps every id."""


def pseudonymous_user(user_id: str, mode: UserAttribute = "pseudonym") -> str:
    """What `AgentUser` shows for `user_id`: the id itself, or `user-` and the first 16 hex
    digits of its SHA-256, the same on every worker and starter (so `opsready list --user`
    and a visibility query can find a user's runs from the id)."""
    if mode == "raw" or (mode == "pseudonym" and not find_sensitive(user_id)):
        return user_id
    return "user-" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:16]
