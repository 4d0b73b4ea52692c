"""Output guardrails: what a model's answer and proposed tool calls may be before anyone acts.

`json_schema` (the answer against the agent's declared schema, by the `jsonschema`
library), `forbidden_content` (configured words and regexes), `leak` (secrets and personal
data in the answer, especially ones that came from tool results: the one redactor finds
them), `refund_grounding` (a refund never above the order total the tools showed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal, TypeGuard

from jsonschema import exceptions as schema_errors
from jsonschema import validators
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opsready.guardrails.base import GuardrailContext, GuardrailHit, GuardrailKind, Stage
from opsready.redaction import Finding, Redactor, find_sensitive, mask_sensitive

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.S)


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JsonSchemaOptions(_Options):
    # TOML: a table, or a string holding JSON (easier for long schemas).
    answer_schema: dict[str, Any] = Field(alias="schema")
    action: Literal["block", "review", "allow"] = "block"

    @field_validator("answer_schema", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as err:
                raise ValueError(f"not valid JSON: {err}") from None
        return value

    @field_validator("answer_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            validators.validator_for(value).check_schema(value)
        except schema_errors.SchemaError as err:
            raise ValueError(f"not a valid JSON Schema: {err.message}") from None
        return value


class ForbiddenContentOptions(_Options):
    words: list[str] = Field(default_factory=list)  # whole words, any case
    patterns: list[str] = Field(default_factory=list)  # Python regular expressions
    action: Literal["block", "review", "mask", "allow"] = "block"

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(
                    f"patterns[{i}] is not a valid regular expression: {err}"
                ) from None
        return value

    @model_validator(mode="after")
    def _something(self) -> ForbiddenContentOptions:
        if not self.words and not self.patterns:
            raise ValueError("needs words or patterns")
        return self


class LeakOptions(_Options):
    action: Literal["mask", "block", "review", "allow"] = "mask"
    # Personal data in the answer: flagged always ("any"), when it came from a tool result
    # ("from_tools": the user's own e-mail may be repeated back), or never. Secrets always.
    pii: Literal["any", "from_tools", "ignore"] = "from_tools"
    fields: list[str] = Field(default_factory=list)  # more field names whose values are secret


class RefundGroundingOptions(_Options):
    tools: list[str] = Field(default_factory=lambda: ["refund_order"], min_length=1)
    amount_field: str = "amount_usd"
    order_field: str = "order_id"
    source_tools: list[str] = Field(default_factory=lambda: ["lookup_order"], min_length=1)
    total_field: str = "total_usd"
    action: Literal["block", "review"] = "block"


class JsonSchema:
    name = "json_schema"
    stage: Stage = "output"

    def __init__(self, options: JsonSchemaOptions) -> None:
        self.options = options
        schema = options.answer_schema
        self._validator = validators.validator_for(schema)(schema)

    def check(self, text: str, ctx: GuardrailContext) -> list[GuardrailHit]:
        fenced = _FENCE.match(text)
        try:
            answer = json.loads(fenced.group(1) if fenced else text)
        except json.JSONDecodeError as err:
            return [self._hit(f"answer is not JSON ({err.msg} at line {err.lineno})")]
        error = schema_errors.best_match(self._validator.iter_errors(answer))
        if error is None:
            return []
        where = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        return [
            self._hit(
                f"answer does not match its schema at {where}: {mask_sensitive(error.message)[:200]}"
            )
        ]

    def _hit(self, detail: str) -> GuardrailHit:
        return GuardrailHit(
            guardrail=self.name,
            kind=GuardrailKind.SCHEMA_VIOLATION,
            action=self.options.action,
            detail=detail,
        )


class ForbiddenContent:
    name = "forbidden_content"
    stage: Stage = "output"

    def __init__(self, options: ForbiddenContentOptions) -> None:
        self.options = options
        words = [(f"word {w!r}", re.compile(rf"(?i)\b{re.escape(w)}\b")) for w in options.words]
        self._rules = words + [(f"pattern {p!r}", re.compile(p)) for p in options.patterns]

    def check(self, text: str, ctx: GuardrailContext) -> list[GuardrailHit]:
        matched = [(label, rule) for label, rule in self._rules if rule.search(text)]
        if not matched:
            return []
        masked = None
        if self.options.action == "mask":
            masked = text
            for _, rule in matched:
                masked = rule.sub("[REMOVED]", masked)
        return [
            GuardrailHit(
                guardrail=self.name,
                kind=GuardrailKind.FORBIDDEN_CONTENT,
                action=self.options.action,
                detail="answer contains forbidden " + ", ".join(label for label, _ in matched),
                masked_text=masked,
            )
        ]


class Leak:
    name = "leak"
    stage: Stage = "output"

    def __init__(self, options: LeakOptions) -> None:
        self.options = options
        self._redactor = Redactor(options.fields)

    def check(self, text: str, ctx: GuardrailContext) -> list[GuardrailHit]:
        tool_text = "\n".join(json.dumps(o.output, default=str) for o in ctx.tool_outputs)
        chosen: list[tuple[Finding, bool]] = []
        for finding in find_sensitive(text):
            from_tool = finding.text in tool_text
            wanted = self.options.pii == "any" or (self.options.pii == "from_tools" and from_tool)
            if finding.is_secret or wanted:
                chosen.append((finding, from_tool))
        for value in self._secret_field_values(ctx):
            for match in re.finditer(re.escape(value), text):
                span = match.span()
                if not any(span[0] < f.span[1] and f.span[0] < span[1] for f, _ in chosen):
                    chosen.append((Finding("sensitive_field", span, value), True))
        if not chosen:
            return []
        kinds = sorted(
            {f.kind + (" from tool results" if from_tool else "") for f, from_tool in chosen}
        )
        action = self.options.action
        return [
            GuardrailHit(
                guardrail=self.name,
                kind=GuardrailKind.DATA_LEAK,
                action=action,
                detail="answer contains "
                + ", ".join(kinds)
                + (" (masked)" if action == "mask" else ""),
                masked_text=mask_sensitive(text, [f for f, _ in chosen])
                if action == "mask"
                else None,
            )
        ]

    def _secret_field_values(self, ctx: GuardrailContext) -> set[str]:
        """Values of sensitive fields (`api_key`, `password`...) in tool results: secret
        whatever they look like, so they must not be repeated in the answer."""

        def walk(value: Any, field: str | None) -> Iterator[str]:
            if isinstance(value, dict):
                for key, inner in value.items():
                    yield from walk(inner, str(key))
            elif isinstance(value, list | tuple):
                for inner in value:
                    yield from walk(inner, field)
            elif field is not None and self._redactor.is_sensitive_field(field):
                text = str(value)
                if len(text) >= 4:  # shorter values would match ordinary words
                    yield text

        return {v for o in ctx.tool_outputs for v in walk(o.output, None)}


class RefundGrounding:
    name = "refund_grounding"
    stage: Stage = "output"

    def __init__(self, options: RefundGroundingOptions) -> None:
        self.options = options

    def check(self, text: str, ctx: GuardrailContext) -> list[GuardrailHit]:
        opts, hits = self.options, []
        proposed: dict[Any, float] = {}
        for call in ctx.tool_calls:
            if call.name not in opts.tools or call.error is not None:
                continue
            raw_amount = call.arguments.get(opts.amount_field)
            order = call.arguments.get(opts.order_field)
            if not _is_number(raw_amount):
                hits.append(self._hit(f"{call.name}: {opts.amount_field} is not a number"))
                continue
            amount = float(raw_amount)
            total = self._order_total(ctx, order)
            if total is None:
                hits.append(
                    self._hit(
                        f"{call.name}: ${amount:.2f} for {opts.order_field} {order} has no "
                        f"{opts.total_field} in the tool results ({', '.join(opts.source_tools)})"
                    )
                )
                continue
            refunded = self._already_refunded(ctx, order)
            proposed[order] = proposed.get(order, 0.0) + amount
            if refunded + proposed[order] > total + 1e-9:
                hits.append(
                    self._hit(
                        f"{call.name}: ${amount:.2f} for {opts.order_field} {order} is above what the "
                        f"tool results show: {opts.total_field} ${total:.2f}, already refunded "
                        f"${refunded:.2f}"
                    )
                )
        return hits

    def _order_total(self, ctx: GuardrailContext, order: Any) -> float | None:
        totals = [
            o.output[self.options.total_field]
            for o in ctx.tool_outputs
            if o.tool in self.options.source_tools
            and isinstance(o.output, dict)
            and o.output.get(self.options.order_field) == order
            and _is_number(o.output.get(self.options.total_field))
        ]
        return float(totals[-1]) if totals else None

    def _already_refunded(self, ctx: GuardrailContext, order: Any) -> float:
        return sum(
            float(o.output[self.options.amount_field])
            for o in ctx.tool_outputs
            if o.tool in self.options.tools
            and isinstance(o.output, dict)
            and o.output.get(self.options.order_field) == order
            and _is_number(o.output.get(self.options.amount_field))
        )

    def _hit(self, detail: str) -> GuardrailHit:
        return GuardrailHit(
            guardrail=self.name,
            kind=GuardrailKind.UNGROUNDED_REFUND,
            action=self.options.action,
            detail=detail,
        )


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
