"""`opsready flags set` refuses a `quotas` or `paused-agents` value a run could not use
(it would only show later as degraded or refused runs), and takes the ones it can."""

from __future__ import annotations

from typing import Any

import pytest

from opsready.errors import FlagChangeError
from opsready.flags.values import check_flag_value
from opsready.settings import PROJECT_ROOT

AGENTS = PROJECT_ROOT / "agents"


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("quotas", [1], "takes a JSON object"),
        ("quotas", {"users": {"per_day_usd": 5}}, "users"),
        ("quotas", {"user": {"per_day_usd": -1}}, "per_day_usd"),
        ("quotas", {"on_exceeded": "shrug"}, "on_exceeded"),
        ("paused-agents", "x", "JSON list of agent names"),
        ("paused-agents", ["suport-triage"], "did you mean support-triage?"),
    ],
)
def test_unusable_values_are_refused_with_nothing_written(key: str, value: Any, says: str) -> None:
    with pytest.raises(FlagChangeError) as caught:
        check_flag_value(key, value, AGENTS, json_error=None)
    assert says in str(caught.value) and "nothing written" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("quotas", {}),
        ("quotas", {"user": {"per_day_usd": 5}, "on_exceeded": "require_approval"}),
        ("paused-agents", []),
        ("paused-agents", ["support-triage"]),
    ],
)
def test_usable_values_are_taken(key: str, value: Any) -> None:
    check_flag_value(key, value, AGENTS, json_error=None)
