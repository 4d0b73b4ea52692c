"""The local flag file as a flag store: every change is versioned, atomic and serialised, and
the LaunchDarkly SDK reading the file through its file data source sees it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from ldclient import Context, LDClient
from ldclient.config import Config
from ldclient.integrations import Files
from ldclient.interfaces import FlagValueChange

from opsready.errors import ConfigError, OpsreadyError
from opsready.flags import (
    FlagChangeError,
    FlagInfo,
    FlagNotFoundError,
    LaunchDarklyApi,
    LocalFlagFile,
    flag_store,
    kill_switch_key,
)
from opsready.settings import SHIPPED_FLAGS_FILE, Settings

DEV_FLAGS = SHIPPED_FLAGS_FILE
AGENT_SWITCH = "kill-switch.agent.support-triage"


@pytest.fixture
def flags_path(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    shutil.copy(DEV_FLAGS, path)
    return path


@pytest.fixture
def store(flags_path: Path) -> LocalFlagFile:
    return LocalFlagFile(flags_path)


def on_disk(path: Path, key: str) -> dict[str, Any]:
    flag: dict[str, Any] = json.loads(path.read_text())["flags"][key]
    return flag


def edit_on_disk(path: Path, key: str, **fields: Any) -> None:
    """Change a flag behind the store's back, as a person editing the file would."""
    document = json.loads(path.read_text())
    document["flags"][key].update(fields)
    path.write_text(json.dumps(document))


def file_stat(path: Path) -> os.stat_result:
    return path.stat()


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_kill_switch_keys_name_their_scope() -> None:
    assert kill_switch_key() == "kill-switch"
    assert kill_switch_key(agent="support-triage") == AGENT_SWITCH
    assert kill_switch_key(tool="refund_order") == "kill-switch.tool.refund_order"
    with pytest.raises(FlagChangeError, match="not both"):
        kill_switch_key(agent="a", tool="b")
    with pytest.raises(FlagChangeError, match="cannot be part of a flag key"):
        kill_switch_key(agent="support triage")


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (
            FlagInfo(
                key="k", on=True, version=1, variations=[False, True], fallthrough_variation=1
            ),
            "true",
        ),
        (
            FlagInfo(
                key="k",
                on=True,
                version=1,
                variations=["control", "candidate"],
                rollout={0: 95.0, 1: 5.0},
            ),
            "95% control / 5% candidate",
        ),
        (
            FlagInfo(key="k", on=False, version=1, variations=[False, True], off_variation=0),
            "off (serves false)",
        ),
        (FlagInfo(key="k", on=True, version=1, variations=[""], fallthrough_variation=0), '""'),
        (
            FlagInfo(
                key="k", on=True, version=1, variations=[1], fallthrough_variation=0, targeting=2
            ),
            "1 (after 2 targets/rules)",
        ),
    ],
)
def test_serving_says_what_everyone_gets(info: FlagInfo, expected: str) -> None:
    assert info.serving() == expected


async def test_list_reads_every_flag_of_the_dev_file(store: LocalFlagFile) -> None:
    flags = {f.key: f for f in await store.list_flags()}
    assert {"kill-switch", AGENT_SWITCH, "agent-variant", "model"} <= flags.keys()
    assert flags["kill-switch"].serving() == "false"
    assert flags["agent-variant"].variations == ["control", "candidate"]


async def test_kill_serves_true_and_bumps_the_version(
    store: LocalFlagFile, flags_path: Path
) -> None:
    info = await store.kill(agent="support-triage", reason="bad answers")
    assert (info.on, info.serving(), info.version) == (True, "true", 2)
    flag = on_disk(flags_path, AGENT_SWITCH)
    assert flag["fallthrough"] == {"variation": 1}
    assert flag["version"] == 2
    assert flag["variations"] == [False, True]  # no new variation for a known value


async def test_unkill_serves_false_again(store: LocalFlagFile, flags_path: Path) -> None:
    await store.kill(tool="refund_order")
    info = await store.unkill(tool="refund_order")
    assert (info.serving(), info.version) == ("false", 3)
    assert on_disk(flags_path, "kill-switch.tool.refund_order")["fallthrough"] == {"variation": 0}


async def test_kill_of_a_scope_without_a_flag_creates_it(
    store: LocalFlagFile, flags_path: Path
) -> None:
    info = await store.kill(tool="send_email")
    assert (info.key, info.serving(), info.version) == ("kill-switch.tool.send_email", "true", 1)
    flag = on_disk(flags_path, "kill-switch.tool.send_email")
    assert flag["variations"] == [False, True]
    assert flag["offVariation"] == 0
    assert "send_email tool" in flag["description"]
    assert flag["salt"] == "kill-switch.tool.send_email"


async def test_unkill_of_a_scope_without_a_flag_is_an_error(store: LocalFlagFile) -> None:
    # A typo must not look like success: the real switch would stay killed.
    with pytest.raises(FlagNotFoundError, match=r"did you mean kill-switch\.agent\.support-triage"):
        await store.unkill(agent="support-triag")


async def test_set_value_serves_an_existing_variation(store: LocalFlagFile) -> None:
    info = await store.set_value("agent-variant", "candidate")
    assert (info.fallthrough_variation, info.variations, info.version) == (
        1,
        ["control", "candidate"],
        2,
    )


async def test_set_value_appends_a_new_variation(store: LocalFlagFile, flags_path: Path) -> None:
    info = await store.set_value("model", "openai/gpt-4o-mini")
    assert info.variations == ["", "openai/gpt-4o-mini"]
    assert info.serving() == "openai/gpt-4o-mini"
    await store.set_value("budgets", {"max_steps": 3})
    assert on_disk(flags_path, "budgets")["variations"] == [{}, {"max_steps": 3}]


async def test_set_value_tells_true_from_one(store: LocalFlagFile) -> None:
    info = await store.set_value("kill-switch", 1)
    assert info.variations == [False, True, 1]
    assert info.fallthrough_variation == 2


async def test_set_value_turns_an_off_flag_on(store: LocalFlagFile, flags_path: Path) -> None:
    edit_on_disk(flags_path, "agent-variant", on=False)
    assert (await store.get_flag("agent-variant")).serving() == "off (serves control)"
    info = await store.set_value("agent-variant", "control")
    assert (info.on, info.serving()) == (True, "control")


async def test_an_unchanged_flag_is_not_rewritten(store: LocalFlagFile, flags_path: Path) -> None:
    before = file_stat(flags_path).st_mtime_ns
    info = await store.unkill()
    assert info.version == 1
    assert file_stat(flags_path).st_mtime_ns == before


async def test_rollout_splits_by_percent_in_thousandths(
    store: LocalFlagFile, flags_path: Path
) -> None:
    info = await store.set_rollout("agent-variant", {0: 95, 1: 5})
    assert info.serving() == "95% control / 5% candidate"
    assert info.rollout == {0: 95.0, 1: 5.0}
    assert info.version == 2
    assert on_disk(flags_path, "agent-variant")["fallthrough"] == {
        "rollout": {
            "variations": [{"variation": 0, "weight": 95000}, {"variation": 1, "weight": 5000}]
        }
    }


async def test_rollout_rounding_still_sums_to_100000(
    store: LocalFlagFile, flags_path: Path
) -> None:
    await store.set_rollout("agent-variant", {0: 66.6667, 1: 33.3333})
    parts = on_disk(flags_path, "agent-variant")["fallthrough"]["rollout"]["variations"]
    assert sum(p["weight"] for p in parts) == 100_000


async def test_rollout_keeps_the_bucketing_of_the_previous_rollout(
    store: LocalFlagFile, flags_path: Path
) -> None:
    rollout = {"bucketBy": "tenant", "variations": [{"variation": 0, "weight": 100000}]}
    edit_on_disk(flags_path, "agent-variant", fallthrough={"rollout": rollout})
    await store.set_rollout("agent-variant", {0: 90, 1: 10})
    assert on_disk(flags_path, "agent-variant")["fallthrough"]["rollout"]["bucketBy"] == "tenant"


async def test_a_100_percent_rollout_is_a_plain_variation(
    store: LocalFlagFile, flags_path: Path
) -> None:
    info = await store.set_rollout("agent-variant", {0: 0, 1: 100})
    assert (info.fallthrough_variation, info.rollout, info.serving()) == (1, None, "candidate")
    assert on_disk(flags_path, "agent-variant")["fallthrough"] == {"variation": 1}


@pytest.mark.parametrize(
    ("percents", "message"),
    [
        ({0: 90, 1: 5}, "add up to 100, not 95"),
        ({0: 120, 1: -20}, "must be 0..100"),
        ({0: 50, 2: 50}, "has no variation 2"),
        ({}, "at least one variation"),
    ],
)
async def test_bad_rollouts_are_refused_and_nothing_is_written(
    store: LocalFlagFile, flags_path: Path, percents: dict[int, float], message: str
) -> None:
    before = file_bytes(flags_path)
    with pytest.raises(FlagChangeError, match=message):
        await store.set_rollout("agent-variant", percents)
    assert file_bytes(flags_path) == before


async def test_unknown_key_lists_close_matches(store: LocalFlagFile) -> None:
    with pytest.raises(FlagNotFoundError) as caught:
        await store.get_flag("agent-varient")
    assert "did you mean agent-variant" in str(caught.value)
    assert caught.value.exit_code == 2
    with pytest.raises(FlagNotFoundError, match="no flag 'nothing-like-it'"):
        await store.set_value("nothing-like-it", True)


async def test_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match=f"{missing}: flag file not found"):
        await LocalFlagFile(missing).list_flags()
    with pytest.raises(ConfigError, match="flag file not found"):
        await LocalFlagFile(missing).kill()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"flags": {', "not valid JSON"),
        ('["a list"]', "expected"),
        ('{"flags": {"x": "not a flag"}}', "flag 'x' is malformed"),
    ],
)
async def test_bad_file_is_a_config_error_naming_it(
    flags_path: Path, text: str, message: str
) -> None:
    await asyncio.to_thread(flags_path.write_text, text)
    with pytest.raises(ConfigError, match=message) as caught:
        await LocalFlagFile(flags_path).set_value("x", True)
    assert str(flags_path) in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_writes_keep_the_file_mode_and_leave_no_temp_files(
    store: LocalFlagFile, flags_path: Path
) -> None:
    os.chmod(flags_path, 0o644)
    await store.kill()
    assert file_stat(flags_path).st_mode & 0o777 == 0o644
    assert sorted(os.listdir(flags_path.parent)) == ["flags.json", "flags.json.lock"]


def test_concurrent_writers_lose_no_update(flags_path: Path) -> None:
    """Two writers (think: the CLI and a rollout activity) each append 25 new variations to
    the same flag; every one survives and each write bumped the version once."""
    writes = 25
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        store = LocalFlagFile(flags_path)  # its own handles, as another process would have

        async def write_all() -> None:
            for i in range(writes):
                await store.set_value("model", f"{name}/{i}")

        try:
            start.wait(timeout=10)
            asyncio.run(write_all())
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    flag = on_disk(flags_path, "model")
    expected = {f"{name}/{i}" for name in ("a", "b") for i in range(writes)}
    assert expected <= set(flag["variations"])
    assert flag["version"] == 1 + 2 * writes


async def test_the_sdk_file_source_sees_a_kill_flip(store: LocalFlagFile, flags_path: Path) -> None:
    source = Files.new_data_source(paths=[str(flags_path)], auto_update=True, poll_interval=0.05)
    client = LDClient(Config("local", update_processor_class=source, send_events=False))
    try:
        assert client.is_initialized()
        context = Context.builder("run-1").set("agent", "support-triage").build()
        assert client.variation(AGENT_SWITCH, context, True) is False
        flipped = threading.Event()
        seen: list[Any] = []

        def on_change(change: FlagValueChange) -> None:
            seen.append(change.new_value)
            flipped.set()

        client.flag_tracker.add_flag_value_change_listener(AGENT_SWITCH, context, on_change)
        await store.kill(agent="support-triage")
        assert await asyncio.to_thread(flipped.wait, 10), "the SDK never saw the kill"
        assert seen == [True]
        assert client.variation(AGENT_SWITCH, context, False) is True

        flipped.clear()
        await store.unkill(agent="support-triage")
        assert await asyncio.to_thread(flipped.wait, 10), "the SDK never saw the unkill"
        assert client.variation(AGENT_SWITCH, context, True) is False
    finally:
        client.close()


def test_flag_store_picks_the_file_without_a_token(tmp_path: Path) -> None:
    chosen = flag_store(Settings(flags_file=tmp_path / "f.json"))
    assert isinstance(chosen, LocalFlagFile)
    assert chosen.location == str(tmp_path / "f.json")


async def test_flag_store_picks_launchdarkly_with_a_token() -> None:
    chosen = flag_store(
        Settings.model_validate(
            {"launchdarkly_api_token": "api-secret", "launchdarkly_project": "ops"}
        )
    )
    assert isinstance(chosen, LaunchDarklyApi)
    assert chosen.location == "LaunchDarkly ops/production"
    assert "api-secret" not in repr(chosen)
    await chosen.aclose()


def test_flag_errors_are_opsready_errors() -> None:
    assert issubclass(FlagNotFoundError, OpsreadyError)
    assert issubclass(FlagChangeError, OpsreadyError)
