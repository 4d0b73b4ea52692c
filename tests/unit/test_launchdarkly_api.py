"""The LaunchDarkly REST API as a flag store, against a real HTTP server on loopback that
speaks the part of the API opsready uses."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from opsready.errors import ConfigError, LaunchDarklyError, LaunchDarklyUnavailableError
from opsready.flags import FlagChangeError, FlagNotFoundError, LaunchDarklyApi
from opsready.flags.launchdarkly_api import SEMANTIC_PATCH
from tests.fakes.launchdarkly_api import FakeLaunchDarkly

TOKEN = "api-0123456789-secret-token"


@pytest.fixture
def fake() -> Iterator[FakeLaunchDarkly]:
    with FakeLaunchDarkly(token=TOKEN) as server:
        server.add_flag("agent-variant", ["control", "candidate"], description="Which variant")
        server.add_flag("kill-switch", [False, True], description="Global kill switch")
        server.add_flag("model", [""], on=False)
        yield server


@pytest.fixture
async def api(fake: FakeLaunchDarkly) -> AsyncIterator[LaunchDarklyApi]:
    client = LaunchDarklyApi(
        url=fake.url, token=TOKEN, project=fake.project, environment="production"
    )
    yield client
    await client.aclose()


def patches(fake: FakeLaunchDarkly) -> list[dict[str, object]]:
    return [r.body for r in fake.requests if r.method == "PATCH"]  # type: ignore[misc]


async def test_list_reads_the_environment_of_every_flag(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    fake.page_size = 2  # LaunchDarkly pages the list; every page must be read
    flags = {f.key: f for f in await api.list_flags()}
    assert sorted(flags) == ["agent-variant", "kill-switch", "model"]
    assert flags["agent-variant"].serving() == "control"
    assert flags["agent-variant"].description == "Which variant"
    assert flags["model"].serving() == 'off (serves "")'
    first = fake.requests[0]
    assert (first.method, first.path) == ("GET", "/api/v2/flags/default")
    assert first.query["env"] == "production"
    assert first.headers["authorization"] == TOKEN
    assert len([r for r in fake.requests if r.method == "GET"]) == 2


async def test_get_reads_one_flag(api: LaunchDarklyApi, fake: FakeLaunchDarkly) -> None:
    info = await api.get_flag("kill-switch")
    assert (info.key, info.on, info.variations, info.version) == (
        "kill-switch",
        True,
        [False, True],
        1,
    )
    assert fake.requests[-1].path == "/api/v2/flags/default/kill-switch"


async def test_set_value_patches_the_fallthrough_semantically(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    info = await api.set_value("agent-variant", "candidate")
    assert (info.serving(), info.version) == ("candidate", 2)
    patch = fake.requests[-1]
    assert patch.headers["content-type"] == SEMANTIC_PATCH
    candidate_id = fake.flag("agent-variant")["variations"][1]["_id"]
    assert patch.body == {
        "environmentKey": "production",
        "instructions": [
            {"kind": "turnFlagOn"},
            {"kind": "updateFallthroughVariationOrRollout", "variationId": candidate_id},
        ],
    }
    assert fake.environment("agent-variant", "test")["fallthrough"] == {"variation": 0}


async def test_set_value_turns_an_off_flag_on(api: LaunchDarklyApi) -> None:
    info = await api.set_value("model", "")
    assert (info.on, info.serving()) == (True, '""')


async def test_set_value_of_a_value_no_variation_has_is_refused(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    with pytest.raises(FlagChangeError, match="has no variation experimental"):
        await api.set_value("agent-variant", "experimental")
    assert patches(fake) == []


async def test_rollout_sends_weights_by_variation_id(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    info = await api.set_rollout("agent-variant", {0: 95, 1: 5})
    assert info.serving() == "95% control / 5% candidate"
    ids = [v["_id"] for v in fake.flag("agent-variant")["variations"]]
    instruction = patches(fake)[-1]["instructions"][1]  # type: ignore[index]
    assert instruction == {
        "kind": "updateFallthroughVariationOrRollout",
        "rolloutWeights": {ids[0]: 95000, ids[1]: 5000},
    }


async def test_a_retried_rollout_step_sends_no_patch(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    await api.set_rollout("agent-variant", {0: 90, 1: 10})
    again = await api.set_rollout("agent-variant", {0: 90, 1: 10})
    assert (again.serving(), again.version) == ("90% control / 10% candidate", 2)
    assert len(patches(fake)) == 1


async def test_a_100_percent_rollout_is_a_plain_variation(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    info = await api.set_rollout("agent-variant", {1: 100})
    assert (info.fallthrough_variation, info.rollout) == (1, None)
    assert "variationId" in patches(fake)[-1]["instructions"][1]  # type: ignore[index]


async def test_bad_rollout_is_refused_before_any_patch(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    with pytest.raises(FlagChangeError, match="add up to 100"):
        await api.set_rollout("agent-variant", {0: 50, 1: 40})
    assert patches(fake) == []


async def test_kill_and_unkill_flip_an_existing_switch(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    killed = await api.kill(reason="runaway costs")
    assert (killed.serving(), killed.version) == ("true", 2)
    assert patches(fake)[-1]["comment"] == "runaway costs"
    restored = await api.unkill()
    assert (restored.serving(), restored.version) == ("false", 3)


async def test_a_kill_already_in_force_sends_no_patch(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    await api.kill()
    again = await api.kill(reason="still bad")
    assert (again.serving(), again.version) == ("true", 2)
    assert len(patches(fake)) == 1


async def test_kill_of_a_missing_scope_creates_the_flag_in_this_environment_only(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    info = await api.kill(agent="support-triage")
    assert (info.key, info.serving()) == ("kill-switch.agent.support-triage", "true")
    create = next(r for r in fake.requests if r.method == "POST")
    assert create.path == "/api/v2/flags/default"
    assert create.body["variations"] == [  # type: ignore[index]
        {"value": False, "name": "false"},
        {"value": True, "name": "true"},
    ]
    assert "support-triage agent" in create.body["description"]  # type: ignore[index]
    # Killing production must not kill the other environments.
    other = fake.environment("kill-switch.agent.support-triage", "test")
    assert (other["on"], other["fallthrough"]) == (False, {"variation": 0})


async def test_unkill_of_a_missing_scope_is_an_error(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    fake.add_flag("kill-switch.tool.search_kb", [False, True])
    with pytest.raises(FlagNotFoundError, match=r"did you mean kill-switch\.tool\.search_kb"):
        await api.unkill(tool="search-kb")
    assert patches(fake) == []


async def test_unknown_flag_is_a_one_line_error(api: LaunchDarklyApi) -> None:
    with pytest.raises(FlagNotFoundError) as caught:
        await api.get_flag("agent-varient")
    message = str(caught.value)
    assert message.startswith("no flag 'agent-varient' in LaunchDarkly default/production")
    assert "did you mean agent-variant" in message
    assert "\n" not in message


async def test_a_rejected_token_is_a_one_line_error_without_the_token(
    fake: FakeLaunchDarkly,
) -> None:
    api = LaunchDarklyApi(url=fake.url, token="api-wrong-token-42", project="default")
    try:
        with pytest.raises(LaunchDarklyError) as caught:
            await api.list_flags()
    finally:
        await api.aclose()
    message = str(caught.value)
    assert "401" in message and "LAUNCHDARKLY_API_TOKEN" in message
    assert "api-wrong-token-42" not in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_an_error_echoing_the_token_has_it_masked(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    fake.fail(400, {"code": "invalid_request", "message": f"bad request for {TOKEN}\nline two"})
    with pytest.raises(LaunchDarklyError) as caught:
        await api.get_flag("kill-switch")
    message = str(caught.value)
    assert TOKEN not in message
    assert "\n" not in message
    assert "bad request for [REDACTED] line two" in message


async def test_forbidden_says_the_token_lacks_the_right(
    api: LaunchDarklyApi, fake: FakeLaunchDarkly
) -> None:
    fake.fail(403)
    with pytest.raises(LaunchDarklyError, match="403"):
        await api.set_value("kill-switch", True)


async def test_rate_limit_says_retry_later(api: LaunchDarklyApi, fake: FakeLaunchDarkly) -> None:
    fake.fail(429, headers={"Retry-After": "30"})
    with pytest.raises(LaunchDarklyUnavailableError, match="retry in 30s") as caught:
        await api.list_flags()
    assert caught.value.exit_code == 4


async def test_server_errors_say_retry_later(api: LaunchDarklyApi, fake: FakeLaunchDarkly) -> None:
    fake.fail(503)
    with pytest.raises(LaunchDarklyUnavailableError, match="retry later"):
        await api.get_flag("kill-switch")


async def test_unknown_project_is_named(fake: FakeLaunchDarkly) -> None:
    api = LaunchDarklyApi(url=fake.url, token=TOKEN, project="nope")
    try:
        with pytest.raises(LaunchDarklyError, match="project 'nope' not found"):
            await api.list_flags()
    finally:
        await api.aclose()


async def test_unreachable_launchdarkly_is_a_one_line_error() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = LaunchDarklyApi(url=f"http://127.0.0.1:{port}", token=TOKEN, project="default")
    try:
        with pytest.raises(LaunchDarklyUnavailableError, match="unreachable") as caught:
            await api.get_flag("kill-switch")
    finally:
        await api.aclose()
    assert TOKEN not in str(caught.value)
    assert "\n" not in str(caught.value)
    # httpx's exception (which holds the request and its headers) is not chained on.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_missing_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="LAUNCHDARKLY_API_TOKEN"):
        LaunchDarklyApi(url="http://127.0.0.1:1", project="default")
