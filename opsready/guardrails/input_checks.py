"""Input guardrails: what a run's input may be before the model sees it.

`size_limit` (characters), `prompt_injection` (the scored heuristic of `injection.py`),
`pii_secrets` (secrets and personal data, found by the one redactor: mask, block or allow).
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opsready.guardrails.base import GuardrailContext, GuardrailHit, GuardrailKind, Stage
from opsready.guardrails.injection import DEFAULT_THRESHOLD, score_injection
from opsready.redaction import find_sensitive, mask_sensitive


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SizeLimitOptions(_Options):
    max_chars: int = Field(default=8_000, gt=0)
    action: Literal["block", "review", "allow"] = "block"


class PromptInjectionOptions(_Options):
    threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, le=1)
    action: Literal["block", "review", "allow"] = "block"


# The kinds `opsready.redaction.find_sensitive` reports (a test keeps the two in step).
SensitiveKind = Literal[
    "private_key",
    "auth_header",
    "api_key",
    "cloud_key",
    "access_token",
    "jwt",
    "credential",
    "email",
    "card",
    "phone",
]


class PiiSecretsOptions(_Options):
    action: Literal["mask", "block", "review", "allow"] = "mask"
    kinds: list[SensitiveKind] | None = None  # None: every kind the redactor knows


class SizeLimit:
    name = "size_limit"
    stage: Stage = "input"

    def __init__(self, options: SizeLimitOptions) -> None:
        self.options = options

    def check(self, text: str, ctx: GuardrailContext) -> list[GuardrailHit]:
        if len(text) <= self.options.max_chars:
            return []
        return [
            GuardrailHit(
                guardrail=self.name,
                kind=GuardrailKind.INPUT_TOO_LARGE,
                action=self.options.action,
                detail=f"input is {len(text)} characters, over the limit of {self.options.max_chars}",
            )
        ]


class PromptInjection:
    name = "prompt_injection"

    stage: Stage = "input"

    def __init__(self, options: PromptInjectionOptions) -> None:
        self.options = options

    def check(self, text: str, ctx: GuardrailContext) -> list[GuardrailHit]:
        result = score_injection(text)
        if result.score < self.options.threshold:
            return []
        return [
            GuardrailHit(
                guardrail=self.name,
                kind=GuardrailKind.PROMPT_INJECTION,
                action=self.options.action,
                detail=(
                    f"looks like prompt injection (score {result.score:.2f}, threshold "
                    f"{self.options.threshold:.2f}): {', '.join(result.signals)}"
                ),
            )
        ]


class PiiSecrets:
    name = "pii_secrets"

    stage: Stage = "input"

    def __init__(self, options: PiiSecretsOptions) -> None:
        self.options = options

    def check(self, text: str, ctx: GuardrailContext) -> list[GuardrailHit]:
        wanted = set(self.options.kinds) if self.options.kinds is not None else None
        findings = [f for f in find_sensitive(text) if wanted is None or f.kind in wanted]
        if not findings:
            return []
        counts = Counter(f.kind for f in findings)
        kinds = ", ".join(f"{n} {k}" if n > 1 else k for k, n in sorted(counts.items()))
        is_secret = any(f.is_secret for f in findings)
        action = self.options.action
        return [
            GuardrailHit(
                guardrail=self.name,
                kind=GuardrailKind.SECRET_IN_INPUT if is_secret else GuardrailKind.PII_IN_INPUT,
                action=action,
                detail=f"input contains {kinds}" + (" (masked)" if action == "mask" else ""),
                masked_text=mask_sensitive(text, findings) if action == "mask" else None,
            )
        ]
