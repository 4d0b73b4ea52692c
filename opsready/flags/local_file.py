"""Flags in the local flag file that the LaunchDarkly SDK's file data source watches:
atomic, locked, version-bumped writes, so workers see each change whole; the working
copy under the data dir is seeded from the shipped defaults on first use."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opsready.errors import ConfigError
from opsready.flags._model import (
    FlagInfo,
    flag_info,
    index_of,
    kill_switch_description,
    kill_switch_key,
    not_found,
    rollout_weights,
)

Change = Callable[[dict[str, Any]], None]


def ensure_flag_file(path: Path, *, seed: Path | None) -> Path:
    """`path`, first copied from `seed` when it does not exist yet (the working copy under
    the data dir; `seed` None: the file must exist already). Two processes seeding at once
    both succeed and neither overwrites the other: the copy is linked into place."""
    if seed is None or path.exists():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".seed", dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(seed.read_bytes())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process seeded it first: keep theirs
        finally:
            os.unlink(temp)
    except OSError as err:
        raise ConfigError(
            f"{path}: cannot create the flag file from {seed}: {err.strerror} "
            "(set OPSREADY_FLAGS_FILE or OPSREADY_DATA_DIR to a writable place)"
        ) from None
    return path


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
        write_atomically(self.path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")

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


def write_atomically(path: Path, text: str) -> None:
    """Write-then-rename: a temp file beside `path`, flushed, then `os.replace`, so a reader
    (the SDK's file data source) sees the old file or the new one, never half of one. The
    mode of an existing file is kept, and its mtime always moves (the SDK polls it)."""
    previous = path.stat() if path.exists() else None
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if previous is not None:
            os.chmod(temp, stat.S_IMODE(previous.st_mode))
            # The SDK polls the mtime: make sure it moves even on a coarse clock.
            if os.stat(temp).st_mtime_ns <= previous.st_mtime_ns:
                later = previous.st_mtime_ns + 1_000_000
                os.utime(temp, ns=(later, later))
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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
