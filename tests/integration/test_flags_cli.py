"""`opsready flags` end to end, as a subprocess: on a copy of the dev flag file, and on a fake
LaunchDarkly REST API on loopback. No Temporal server is needed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsready.settings import PROJECT_ROOT, SHIPPED_FLAGS_FILE
from tests.fakes.launchdarkly_api import FakeLaunchDarkly

OPSREADY = str(Path(sys.executable).parent / "opsready")
AGENT_SWITCH = "kill-switch.agent.support-triage"


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any flag or LaunchDarkly setting, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LAUNCHDARKLY_", "OPSREADY_", "OTEL_"))
    }
    return {**env, "OPSREADY_LOG_FORMAT": "json", **extra}


def run(env: dict[str, str], *args: str, cwd: Path = PROJECT_ROOT) -> Done:
    done = subprocess.run(
        [OPSREADY, "flags", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    shutil.copy(SHIPPED_FLAGS_FILE, path)
    return path


@pytest.fixture
def local(flags_file: Path) -> dict[str, str]:
    return clean_env(OPSREADY_FLAGS_FILE=str(flags_file))


def _git_status(path: Path) -> str:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--", str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_kill_writes_the_working_copy_and_leaves_the_shipped_flags_untouched(
    tmp_path: Path,
) -> None:
    shipped, status = SHIPPED_FLAGS_FILE.read_bytes(), _git_status(SHIPPED_FLAGS_FILE)
    # No OPSREADY_FLAGS_FILE nor OPSREADY_DATA_DIR: the default, ./.opsready/flags.json.
    killed = run(clean_env(), "kill", "--agent", "support-triage", cwd=tmp_path)
    assert killed.code == 0, killed.err
    working = tmp_path / ".opsready" / "flags.json"
    assert f"(version 2, {Path('.opsready') / 'flags.json'})" in killed.out
    assert json.loads(working.read_text())["flags"][AGENT_SWITCH]["fallthrough"] == {"variation": 1}
    assert SHIPPED_FLAGS_FILE.read_bytes() == shipped
    assert _git_status(SHIPPED_FLAGS_FILE) == status  # clean on a fresh clone
    # The next command reads the working copy, not the shipped defaults again.
    got = run(clean_env(), "get", AGENT_SWITCH, "--json", cwd=tmp_path)
    assert got.json()["serving"] == "true"


def test_list_shows_every_flag_and_what_it_serves(local: dict[str, str]) -> None:
    done = run(local, "list")
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].split() == ["key", "on", "serving", "description"]
    row = next(line for line in lines if line.startswith("agent-variant "))
    assert row.split()[1:3] == ["yes", "control"]
    listed = run(local, "list", "--json").json()
    assert {f["key"] for f in listed} >= {"kill-switch", AGENT_SWITCH, "agent-variant"}
    assert all("serving" in f for f in listed)


def test_kill_an_agent_then_get_shows_true_then_unkill(
    local: dict[str, str], flags_file: Path
) -> None:
    killed = run(local, "kill", "--agent", "support-triage", "--reason", "bad answers")
    assert killed.code == 0, killed.err
    assert killed.out.strip() == (
        f"killed agent support-triage: {AGENT_SWITCH} now serves true (version 2, {flags_file})"
    )
    got = run(local, "get", AGENT_SWITCH, "--json")
    assert got.code == 0, got.err
    assert (got.json()["serving"], got.json()["version"]) == ("true", 2)
    assert "serving      true" in run(local, "get", AGENT_SWITCH).out

    restored = run(local, "unkill", "--agent", "support-triage")
    assert restored.code == 0, restored.err
    assert f"{AGENT_SWITCH} now serves false (version 3," in restored.out
    assert run(local, "get", AGENT_SWITCH, "--json").json()["serving"] == "false"


def test_kill_of_a_tool_no_agent_knows_creates_its_switch_only_with_force(
    local: dict[str, str], flags_file: Path
) -> None:
    before = flags_file.read_bytes()
    line = one_line_error(run(local, "kill", "--tool", "send_email"))
    assert "unknown tool 'send_email'" in line and "--force" in line
    assert flags_file.read_bytes() == before
    done = run(local, "kill", "--tool", "send_email", "--force")
    assert done.code == 0, done.err
    assert "kill-switch.tool.send_email (created) now serves true" in done.out


def test_a_misspelt_agent_or_tool_is_refused_with_a_suggestion(
    local: dict[str, str], flags_file: Path
) -> None:
    before = flags_file.read_bytes()
    line = one_line_error(run(local, "kill", "--agent", "suport-triage"))
    assert line.startswith(
        "opsready: error: unknown agent 'suport-triage'; did you mean support-triage?"
    )
    line = one_line_error(run(local, "kill", "--tool", "refund"))
    assert line.startswith("opsready: error: unknown tool 'refund'; did you mean refund_order?")
    assert flags_file.read_bytes() == before


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("budgets", '{"max_steps": 3', "is not valid JSON (Expecting ',' delimiter"),
        ("budgets", '{"max_step": 3}', "no budget 'max_step'; did you mean max_steps"),
        ("budgets", '{"max_steps": 0}', "max_steps: Input should be greater than 0"),
        ("budgets", "[]", "budgets takes a JSON object of max_steps"),
        ("kill-switch", "yes", "it takes true or false"),
        ("enabled-tools", '["search_kb", "refund"]', "unknown tool 'refund'"),
        ("agent-variant", "candidat", "did you mean candidate?"),
        ("model", "local/nope", "has no price"),
        ("shadow", '{"prompt_version": "v9"}', "no 'v9' in the agents' definitions"),
        ("shadow", '{"sample_rate": 2}', "sample_rate: Input should be less than or equal to 1"),
    ],
)
def test_set_refuses_a_value_its_flag_cannot_use_and_writes_nothing(
    local: dict[str, str], flags_file: Path, key: str, value: str, says: str
) -> None:
    before = flags_file.read_bytes()
    line = one_line_error(run(local, "set", key, value))
    assert says in line and line.endswith("; nothing written"), line
    assert flags_file.read_bytes() == before


def test_global_kill_without_options(local: dict[str, str]) -> None:
    done = run(local, "kill")
    assert done.code == 0, done.err
    assert done.out.startswith("killed everything: kill-switch now serves true")


def test_set_parses_json_values_else_takes_text(local: dict[str, str]) -> None:
    done = run(local, "set", "budgets", '{"max_steps": 3}', "--json")
    assert done.code == 0, done.err
    assert done.json()["variations"][done.json()["fallthrough_variation"]] == {"max_steps": 3}
    text = run(local, "set", "agent-variant", "candidate")
    assert text.out.startswith("agent-variant now serves candidate (version 2,")


def one_line_error(done: Done) -> str:
    assert done.code == 2, (done.out, done.err)
    lines = done.err.strip().splitlines()
    assert len(lines) == 1, done.err
    assert "Traceback" not in done.err
    return lines[0]


def test_a_bad_key_exits_2_with_one_line(local: dict[str, str]) -> None:
    line = one_line_error(run(local, "get", "kill-swich"))
    assert line == (
        "opsready: error: no flag 'kill-swich' in "
        f"{local['OPSREADY_FLAGS_FILE']}; did you mean kill-switch?"
    )
    # A typo in an unkill must not look like success: the real switch would stay killed.
    line = one_line_error(run(local, "unkill", "--agent", "support-triag"))
    assert f"did you mean {AGENT_SWITCH}," in line


def test_a_bad_flag_file_exits_2_with_one_line(local: dict[str, str], flags_file: Path) -> None:
    flags_file.write_text("{not json")
    line = one_line_error(run(local, "list"))
    assert f"{flags_file}: not valid JSON" in line


def test_both_scopes_at_once_are_refused(local: dict[str, str]) -> None:
    done = run(local, "kill", "--agent", "a", "--tool", "b")
    assert done.code == 2
    assert "not allowed with argument --agent" in done.err


@pytest.fixture
def launchdarkly() -> Iterator[FakeLaunchDarkly]:
    with FakeLaunchDarkly() as fake:
        fake.add_flag("kill-switch", [False, True], description="Global kill switch")
        yield fake


def test_with_a_token_changes_go_to_launchdarkly(launchdarkly: FakeLaunchDarkly) -> None:
    env = clean_env(
        LAUNCHDARKLY_API_TOKEN=launchdarkly.token,
        LAUNCHDARKLY_API_URL=launchdarkly.url,
        LAUNCHDARKLY_PROJECT=launchdarkly.project,
    )
    done = run(env, "kill", "--agent", "support-triage", "--reason", "incident 42")
    assert done.code == 0, done.err
    assert done.out.strip().endswith("now serves true (version 2, LaunchDarkly default/production)")
    assert "(created)" in done.out
    assert launchdarkly.environment(AGENT_SWITCH)["fallthrough"] == {"variation": 1}
    assert launchdarkly.token not in done.out + done.err

    bad = clean_env(
        LAUNCHDARKLY_API_TOKEN="api-wrong-token-77",
        LAUNCHDARKLY_API_URL=launchdarkly.url,
    )
    line = one_line_error(run(bad, "list"))
    assert "401" in line and "api-wrong-token-77" not in line
