"""What the flag admin tools share: a flag as an operator reads it, kill-switch keys and
descriptions, variation lookups and rollout weights, and the not-found message."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from opsready.errors import FlagChangeError, FlagNotFoundError
from workflows import contract

TOTAL_WEIGHT = 100_000  # LaunchDarkly rollout weights are thousandths of a percent
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # what a flag key may hold


class FlagInfo(BaseModel):
    """One flag as an operator reads it: is it on, and what does everyone get."""

    key: str
    description: str = ""
    on: bool
    version: int
    variations: list[Any]
    fallthrough_variation: int | None = None
    rollout: dict[int, float] | None = None  # variation index -> percent
    off_variation: int | None = None
    targeting: int = 0  # individual targets and rules, evaluated before the fallthrough

    def show(self, index: int | None) -> str:
        """A variation's value as text: strings bare, everything else as JSON."""
        if index is None or not 0 <= index < len(self.variations):
            return "the code's default"
        return show_value(self.variations[index])

    def serving(self) -> str:
        """What the flag serves, e.g. `true`, `95% control / 5% candidate`, `off (serves false)`."""
        if not self.on:
            return f"off (serves {self.show(self.off_variation)})"
        if self.rollout:
            text = " / ".join(f"{pct:g}% {self.show(i)}" for i, pct in sorted(self.rollout.items()))
        elif self.fallthrough_variation is not None:
            text = self.show(self.fallthrough_variation)
        else:
            text = "nothing (no default rule)"
        if self.targeting:
            text += f" (after {self.targeting} targets/rules)"
        return text


def kill_switch_key(agent: str | None = None, tool: str | None = None) -> str:
    """`kill-switch` (everything), `kill-switch.agent.<agent>` or `kill-switch.tool.<tool>`,
    refusing names a flag key cannot hold with a message an operator can act on."""
    if agent is not None and tool is not None:
        raise FlagChangeError("a kill switch has one scope: an agent or a tool, not both")
    for kind, name in (("agent", agent), ("tool", tool)):
        if name is not None and not _SCOPE_NAME.match(name):
            raise FlagChangeError(
                f"{kind} name {name!r} cannot be part of a flag key: use letters, digits, "
                "'.', '_' or '-'"
            )
    return contract.kill_switch_key(agent, tool)


def kill_switch_description(key: str) -> str:
    """The description a kill switch gets when `kill` creates it."""
    if key == contract.KILL_SWITCH:
        return "Global kill switch. true: every agent run halts now and new runs are refused."
    _, kind, name = key.split(".", 2)
    if kind == "agent":
        return f"Kill switch for the {name} agent: its runs halt, new ones are refused."
    return f"Kill switch for the {name} tool: calls are refused and the model is told why."


def show_value(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def index_of(variations: Sequence[Any], value: Any) -> int | None:
    """Index of the variation equal to `value` as JSON (so `true` is not `1`)."""
    wanted = json.dumps(value, sort_keys=True)
    for index, candidate in enumerate(variations):
        if json.dumps(candidate, sort_keys=True) == wanted:
            return index
    return None


def rollout_weights(
    key: str, percents: Mapping[int, float], variations: Sequence[Any]
) -> dict[int, int]:
    """Percent per variation index -> weights in thousandths summing to 100000, zeros dropped."""
    if not percents:
        raise FlagChangeError(f"a rollout of {key} needs at least one variation")
    for index, percent in percents.items():
        if not 0 <= index < len(variations):
            choices = ", ".join(f"{i}={show_value(v)}" for i, v in enumerate(variations))
            raise FlagChangeError(f"{key} has no variation {index} (it has {choices})")
        if not math.isfinite(percent) or not 0 <= percent <= 100:
            raise FlagChangeError(f"rollout percentages must be 0..100, not {percent}")
    total = sum(percents.values())
    if abs(total - 100) > 0.001:
        raise FlagChangeError(f"rollout percentages must add up to 100, not {total:g}")
    weights = {i: round(percents[i] * 1000) for i in sorted(percents)}
    weights[max(weights, key=lambda i: weights[i])] += TOTAL_WEIGHT - sum(weights.values())
    return {i: w for i, w in weights.items() if w > 0}


def not_found(key: str, known: Sequence[str], where: str) -> FlagNotFoundError:
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = (
        f"; did you mean {', '.join(close)}?"
        if close
        else "; `opsready flags list` shows the flags"
    )
    return FlagNotFoundError(f"no flag {key!r} in {where}{hint}")


def flag_info(
    key: str, *, description: str, variations: list[Any], version: int, config: Mapping[str, Any]
) -> FlagInfo:
    """A FlagInfo from a flag configuration: the file's flag or LaunchDarkly's environment
    (both hold `on`, `fallthrough`, `offVariation`, `targets`, `contextTargets`, `rules`)."""
    fallthrough = config.get("fallthrough") or {}
    rollout = fallthrough.get("rollout")
    percents = None
    if isinstance(rollout, Mapping):
        percents = {
            int(part["variation"]): part.get("weight", 0) / 1000
            for part in rollout.get("variations", [])
        }
    targeting = sum(len(config.get(name) or []) for name in ("targets", "contextTargets", "rules"))
    return FlagInfo(
        key=key,
        description=description or "",
        on=bool(config.get("on", False)),
        version=version,
        variations=variations,
        fallthrough_variation=fallthrough.get("variation"),
        rollout=percents,
        off_variation=config.get("offVariation"),
        targeting=targeting,
    )
