"""The admin side of feature flags: read them and change what they serve, kill switches included.

Workers evaluate flags with the LaunchDarkly SDK; this module changes them, either in the local
flag file the SDK's file data source watches (`LocalFlagFile`) or in LaunchDarkly through its
REST API (`LaunchDarklyApi`, when LAUNCHDARKLY_API_TOKEN is set). `flag_store` picks one.
"""

from __future__ import annotations

import asyncio
import difflib
import fcntl
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from opsready.errors import ConfigError, OpsreadyError
from opsready.settings import Settings

if TYPE_CHECKING:
    from opsready._launchdarkly_api import LaunchDarklyApi

__all__ = [
    "FlagChangeError",
    "FlagInfo",
    "FlagNotFoundError",
    "FlagStore",
    "LaunchDarklyApi",
    "LocalFlagFile",
    "flag_store",
    "kill_switch_key",
]

KILL_SWITCH = "kill-switch"
TOTAL_WEIGHT = 100_000  # LaunchDarkly rollout weights are thousandths of a percent
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # what a flag key may hold


class FlagNotFoundError(OpsreadyError):
    """No flag with that key (the message lists close matches)."""


class FlagChangeError(OpsreadyError):
    """A change a flag cannot take: an unknown variation, bad percentages, a bad scope."""


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


class FlagStore(Protocol):
    """Where flags are changed: the local flag file or LaunchDarkly."""

    @property
    def location(self) -> str:
        """Where the flags live, for messages: a file path or `LaunchDarkly project/env`."""
        ...

    async def list_flags(self) -> list[FlagInfo]: ...

    async def get_flag(self, key: str) -> FlagInfo: ...

    async def set_value(self, key: str, value: Any) -> FlagInfo:
        """Turn the flag on and serve `value` to everyone."""
        ...

    async def set_rollout(self, key: str, percents: Mapping[int, float]) -> FlagInfo:
        """Turn the flag on and split everyone over variation indexes by percent."""
        ...

    async def kill(
        self, *, agent: str | None = None, tool: str | None = None, reason: str | None = None
    ) -> FlagInfo:
        """Serve `true` on the kill switch of the scope, creating the flag when missing."""
        ...

    async def unkill(
        self, *, agent: str | None = None, tool: str | None = None, reason: str | None = None
    ) -> FlagInfo:
        """Serve `false` on the kill switch of the scope."""
        ...

    async def aclose(self) -> None: ...


def kill_switch_key(agent: str | None = None, tool: str | None = None) -> str:
    """`kill-switch` (everything), `kill-switch.agent.<agent>` or `kill-switch.tool.<tool>`."""
    if agent is not None and tool is not None:
        raise FlagChangeError("a kill switch has one scope: an agent or a tool, not both")
    for kind, name in (("agent", agent), ("tool", tool)):
        if name is None:
            continue
        if not _SCOPE_NAME.match(name):
            raise FlagChangeError(
                f"{kind} name {name!r} cannot be part of a flag key: use letters, digits, "
                "'.', '_' or '-'"
            )
        return f"{KILL_SWITCH}.{kind}.{name}"
    return KILL_SWITCH


def kill_switch_description(key: str) -> str:
    """The description a kill switch gets when `kill` creates it."""
    if key == KILL_SWITCH:
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


Change = Callable[[dict[str, Any]], None]


def serve_value(value: Any) -> Change:
    """A file change: the flag on, its fallthrough the variation equal to `value` (appended
    when the flag has no such variation)."""

    def change(flag: dict[str, Any]) -> None:
        variations = flag.setdefault("variations", [])
        index = index_of(variations, value)
        if index is None:
            variations.append(value)
            index = len(variations) - 1
        flag["on"] = True
        flag["fallthrough"] = {"variation": index}

    return change


class LocalFlagFile:
    """Flags in the JSON file the SDK's file data source watches (`{"flags": {KEY: flag}}`).

    Every change bumps the flag's `version` (the SDK's change listeners fire only then), is
    written atomically (temp file + os.replace, so the SDK never reads half a file) and holds
    a flock on `<file>.lock`, so the CLI and a rollout activity never lose each other's update.
    A kill's `reason` is not stored: the file has no change history (LaunchDarkly has one).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @property
    def location(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"LocalFlagFile({str(self.path)!r})"

    async def list_flags(self) -> list[FlagInfo]:
        flags = (await asyncio.to_thread(self._load))["flags"]
        return [self._info(key, flag) for key, flag in flags.items()]

    async def get_flag(self, key: str) -> FlagInfo:
        flags = (await asyncio.to_thread(self._load))["flags"]
        if key not in flags:
            raise not_found(key, list(flags), str(self.path))
        return self._info(key, flags[key])

    async def set_value(self, key: str, value: Any) -> FlagInfo:
        return await self._change(key, serve_value(value))

    async def set_rollout(self, key: str, percents: Mapping[int, float]) -> FlagInfo:
        def change(flag: dict[str, Any]) -> None:
            weights = rollout_weights(key, percents, flag.get("variations") or [])
            flag["on"] = True
            if len(weights) == 1:
                flag["fallthrough"] = {"variation": next(iter(weights))}
                return
            # Keep bucketBy/contextKind/seed, so contexts stay in their buckets as it moves.
            previous = (flag.get("fallthrough") or {}).get("rollout") or {}
            rollout = {name: v for name, v in previous.items() if name != "variations"}
            rollout["variations"] = [{"variation": i, "weight": w} for i, w in weights.items()]
            flag["fallthrough"] = {"rollout": rollout}

        return await self._change(key, change)

    async def kill(
        self, *, agent: str | None = None, tool: str | None = None, reason: str | None = None
    ) -> FlagInfo:
        key = kill_switch_key(agent, tool)
        return await self._change(key, serve_value(True), create=True)

    async def unkill(
        self, *, agent: str | None = None, tool: str | None = None, reason: str | None = None
    ) -> FlagInfo:
        key = kill_switch_key(agent, tool)
        return await self._change(key, serve_value(False))

    async def aclose(self) -> None:
        return None

    # --- the file ---------------------------------------------------------------------

    async def _change(self, key: str, change: Change, *, create: bool = False) -> FlagInfo:
        return await asyncio.to_thread(self._update, key, change, create)

    def _update(self, key: str, change: Change, create: bool) -> FlagInfo:
        """Read, change and write back one flag under the lock; no change, no write."""
        with self._locked():
            document = self._load()
            flags = document["flags"]
            if key not in flags:
                if not create:
                    raise not_found(key, list(flags), str(self.path))
                flags[key] = _new_kill_switch(key)
            flag = flags[key]
            self._info(key, flag)  # a malformed flag is a ConfigError, not a crash below
            before = json.dumps(flag, sort_keys=True)
            change(flag)
            if json.dumps(flag, sort_keys=True) != before:
                flag["version"] = int(flag.get("version", 1)) + 1
                self._write(document)
            return self._info(key, flag)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock belongs to the open file description, so it serialises threads as well as
        # processes; closing the file releases it. The lock file is never replaced.
        try:
            with open(self._lock_path, "a") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                yield
        except OSError as err:
            raise ConfigError(f"{err.filename or self.path}: {err.strerror}") from None

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"{self.path}: flag file not found (set OPSREADY_FLAGS_FILE to the flag file)"
            ) from None
        except OSError as err:
            raise ConfigError(f"{self.path}: cannot read the flag file: {err.strerror}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"{self.path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
            ) from None
        if not isinstance(document, dict) or not isinstance(document.setdefault("flags", {}), dict):
            raise ConfigError(
                f'{self.path}: expected {{"flags": {{KEY: flag, ...}}}} '
                "(the LaunchDarkly SDK's file data source format)"
            )
        return document

    def _write(self, document: dict[str, Any]) -> None:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        previous = self.path.stat()
        fd, temp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, stat.S_IMODE(previous.st_mode))
            # The SDK polls the mtime: make sure it moves even on a coarse clock.
            if os.stat(temp).st_mtime_ns <= previous.st_mtime_ns:
                later = previous.st_mtime_ns + 1_000_000
                os.utime(temp, ns=(later, later))
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _info(self, key: str, flag: Any) -> FlagInfo:
        try:
            return flag_info(
                key,
                description=flag.get("description", ""),
                variations=list(flag.get("variations") or []),
                version=int(flag.get("version", 1)),
                config=flag,
            )
        except (AttributeError, KeyError, TypeError, ValueError, ValidationError):
            raise ConfigError(
                f"{self.path}: flag {key!r} is malformed (see the LaunchDarkly file data source "
                "format)"
            ) from None


def _new_kill_switch(key: str) -> dict[str, Any]:
    """A boolean flag serving false; `kill` then turns it to true (version 1 after the bump)."""
    return {
        "key": key,
        "description": kill_switch_description(key),
        "version": 0,
        "on": True,
        "variations": [False, True],
        "fallthrough": {"variation": 0},
        "offVariation": 0,
        "targets": [],
        "contextTargets": [],
        "rules": [],
        "salt": key,
    }


def flag_store(settings: Settings) -> FlagStore:
    """LaunchDarkly's REST API when LAUNCHDARKLY_API_TOKEN is set, else the local flag file."""
    if settings.launchdarkly_api_token is not None:
        from opsready._launchdarkly_api import LaunchDarklyApi

        return LaunchDarklyApi(settings)
    return LocalFlagFile(settings.flags_file)


def __getattr__(name: str) -> Any:
    # `LaunchDarklyApi` is built on this module's types, so it lives in its own module and is
    # re-exported lazily here (an import at the top would be circular).
    if name == "LaunchDarklyApi":
        from opsready._launchdarkly_api import LaunchDarklyApi

        return LaunchDarklyApi
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
