"""The admin side of feature flags: read them and change what they serve, kill switches included.

Workers evaluate flags with the LaunchDarkly SDK (`activities.flags`); this package changes
them, either in the local flag file the SDK's file data source watches (`LocalFlagFile`) or
in LaunchDarkly through its REST API (`LaunchDarklyApi`, when LAUNCHDARKLY_API_TOKEN is set).
`flag_store` picks one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from opsready.errors import FlagChangeError, FlagNotFoundError, LaunchDarklyError
from opsready.flags._model import FlagInfo, kill_switch_key, show_value
from opsready.flags.launchdarkly_api import LaunchDarklyApi
from opsready.flags.local_file import LocalFlagFile, ensure_flag_file, write_atomically
from opsready.settings import SHIPPED_FLAGS_FILE, Settings

__all__ = [
    "FlagChangeError",
    "FlagInfo",
    "FlagNotFoundError",
    "FlagStore",
    "LaunchDarklyApi",
    "LaunchDarklyError",
    "LocalFlagFile",
    "flag_store",
    "kill_switch_key",
    "show_value",
    "working_flag_file",
    "write_atomically",
]


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


def flag_store(settings: Settings) -> FlagStore:
    """LaunchDarkly's REST API when LAUNCHDARKLY_API_TOKEN is set, else the local flag file."""
    if settings.launchdarkly_api_token is not None:
        return LaunchDarklyApi(settings)
    return LocalFlagFile(working_flag_file(settings))


def working_flag_file(settings: Settings) -> Path:
    """The local flag file of these settings; the data dir's working copy is seeded from
    the shipped defaults (temporal-dev/flags.json) when it does not exist yet."""
    seed = SHIPPED_FLAGS_FILE if settings.is_default_flags_file else None
    return ensure_flag_file(settings.flags_file, seed=seed)
