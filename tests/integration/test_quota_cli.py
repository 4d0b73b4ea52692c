"""`opsready quota show|set|reset` against the dev server, as an operator types them."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_cli import Cli, cli  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


async def test_quota_set_show_and_reset_a_tenants_ledger(cli: Cli) -> None:  # noqa: F811
    scope = f"tenant:acme-{uuid.uuid4().hex[:6]}"
    missing = await cli("quota", "show", scope)
    assert missing.code == 3 and "no quota ledger for tenant acme-" in missing.err

    done = await cli("quota", "set", scope, "--per-day", "5", "--max-open-runs", "3")
    assert done.code == 0, done.err
    assert "today       $0.00 of $5.00" in done.out and "open runs   0 of 3" in done.out

    shown = (await cli("quota", "show", scope, "--json")).json()
    assert shown["operator_limits"] == {
        "per_day_usd": 5.0,
        "per_month_usd": None,
        "max_open_runs": 3,
    }
    listed = await cli("quota", "show")
    assert f"ledger      {scope.replace(':', ' ')}" in listed.out

    reset = await cli("quota", "reset", scope, "--clear-limits", "--by", "oncall", "--json")
    assert reset.json()["operator_limits"]["per_day_usd"] is None
