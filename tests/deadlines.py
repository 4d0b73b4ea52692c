"""Every async test has a deadline that really fires (a pytest plugin, loaded by conftest).

pytest-timeout's default method raises from a SIGALRM handler in whatever the main thread
runs at that moment. Under asyncio that is usually an event-loop callback (the Temporal
SDK's bridge and pollers keep the loop busy), and asyncio swallows a callback's exception
and logs it: the test never learns of its timeout and waits forever. So each async test
runs inside `asyncio.timeout`, which the loop itself enforces, a little before
pytest-timeout's own limit; pytest-timeout (method `thread`) stays as the backstop for a
loop that is blocked outright, where it ends the whole run loudly instead of hanging.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

# The async deadline fires this long before pytest-timeout's limit, so a stuck test fails on
# its own with the traceback of the await it was stuck in.
MARGIN_SECONDS = 10.0


def deadline_seconds(item: pytest.Item) -> float | None:
    """This test's limit: its `timeout` mark, else the ini `timeout`; None when unlimited."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        limit = float(marker.args[0])
    else:
        limit = float(item.config.getini("timeout") or 0)
    if limit <= 0:
        return None
    return max(limit - MARGIN_SECONDS, limit * 0.8)


def with_deadline(
    test: Callable[..., Coroutine[Any, Any, Any]], seconds: float, name: str
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(test)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await test(*args, **kwargs)
        except TimeoutError:
            if not deadline.expired():
                raise  # the test's own TimeoutError, not our deadline
            pytest.fail(f"{name}: deadline of {seconds:g}s passed (see the await above)")

    return timed


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        test = getattr(item, "obj", None)
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(test):
            continue
        seconds = deadline_seconds(item)
        if seconds is not None:
            item.obj = with_deadline(test, seconds, item.nodeid)
