"""Released agent versions: archives, diffs in text and meaning, snapshots, the CI check."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsready import agent_versions
from opsready.agent_versions import UnknownVersionError
from opsready.agents import list_agents
from opsready.errors import ConfigError, OpsreadyError, UnknownAgentError
from opsready.settings import PROJECT_ROOT
from starters.cli import main

V1 = """\
name = "helper"
version = "1.0.0"
model = "local/support-triage"
prompt_version = "v1"

[prompts.v1]
system = "Be helpful."

[budgets]
max_steps = 6

[approval]
approvers = ["alice", "bob"]

[tools.search_kb]

[tools.refund_order]
approval = "over_threshold"
threshold_field = "amount_usd"
threshold = 50
"""

V2 = """\
name = "helper"
version = "1.1.0"
model = "openai/gpt-4o-mini"
prompt_version = "v2"

[prompts.v1]
system = "Be helpful and brief."

[prompts.v2]
system = "Be helpful. Cite the policy."

[budgets]
max_steps = 8

[approval]
approvers = ["alice"]
timeout_seconds = 600

[tools.refund_order]
approval = "over_threshold"
threshold_field = "amount_usd"
threshold = 80

[tools.lookup_order]

[variants.candidate]
prompt_version = "v1"
"""


def release(agents_dir: Path, text: str, version: str, *, current: bool = False) -> None:
    archive = agents_dir / "versions" / "helper" / f"{version}.toml"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_text(text)
    if current:
        (agents_dir / "helper.toml").write_text(text)


def test_diff_summarises_what_changed_between_two_versions(tmp_path: Path) -> None:
    release(tmp_path, V1, "1.0.0")
    release(tmp_path, V2, "1.1.0", current=True)

    diff = agent_versions.diff(tmp_path, "helper", "1.0.0", "current")

    assert (diff.old, diff.new) == ("1.0.0", "current: 1.1.0")
    summary = {(c.area, c.detail) for c in diff.changes}
    assert summary == {
        ("version", "'1.0.0' -> '1.1.0'"),
        ("model", "'local/support-triage' -> 'openai/gpt-4o-mini'"),
        ("prompt_version", "'v1' -> 'v2'"),
        ("prompts", "prompt v1 text changed"),
        ("prompts", "prompt v2 added"),
        ("tools", "tool lookup_order added"),
        ("tools", "tool search_kb removed"),
        ("tools", "tool refund_order: threshold 50 -> 80"),
        ("budgets", "max_steps 6 -> 8"),
        ("approval", "approvers [alice, bob] -> [alice]"),
        ("approval", "timeout_seconds 3600 -> 600"),
        ("variants", "variant candidate added (prompt_version 'v1')"),
    }
    assert diff.unified_diff.startswith(f"--- {tmp_path}/versions/helper/1.0.0.toml (1.0.0)\n")
    assert '\n-model = "local/support-triage"\n' in diff.unified_diff
    assert '\n+model = "openai/gpt-4o-mini"\n' in diff.unified_diff


def test_diff_flags_edits_without_a_bump_and_formatting_only_edits(tmp_path: Path) -> None:
    prompt_edit, comment_edit = tmp_path / "prompt", tmp_path / "comment"
    for agents_dir, current in (
        (prompt_edit, V1.replace("Be helpful.", "Be kind.")),
        (comment_edit, "# reviewed by ops\n" + V1),
    ):
        release(agents_dir, V1, "1.0.0")
        (agents_dir / "helper.toml").write_text(current)

    prompt = agent_versions.diff(prompt_edit, "helper", "1.0.0", "current")
    comment = agent_versions.diff(comment_edit, "helper", "1.0.0", "current")
    same = agent_versions.diff(prompt_edit, "helper", "1.0.0", "1.0.0")

    assert [c.detail for c in prompt.changes] == [
        "still 1.0.0: changed without a bump",
        "prompt v1 text changed (the one in use)",
    ]
    assert [c.detail for c in comment.changes] == [
        "still 1.0.0: changed without a bump",
        "comments or formatting only",
    ]
    assert (same.changes, same.unified_diff) == ([], "")


def test_an_archive_must_say_the_version_it_is_named_for(tmp_path: Path) -> None:
    release(tmp_path, V1, "1.0.0", current=True)
    release(tmp_path, V1, "0.9.0")

    with pytest.raises(ConfigError, match=r"0\.9\.0\.toml says version = '1\.0\.0'"):
        agent_versions.diff(tmp_path, "helper", "0.9.0", "current")


def test_snapshot_archives_an_exact_copy_once(tmp_path: Path) -> None:
    (tmp_path / "helper.toml").write_text(V1)

    first = agent_versions.snapshot(tmp_path, "helper")
    again = agent_versions.snapshot(tmp_path, "helper")

    assert first.is_new and not again.is_new
    assert first.path == tmp_path / "versions" / "helper" / "1.0.0.toml"
    assert first.path.read_bytes() == (tmp_path / "helper.toml").read_bytes()


def test_snapshot_refuses_a_changed_definition_with_the_same_version(tmp_path: Path) -> None:
    release(tmp_path, V1, "1.0.0")
    (tmp_path / "helper.toml").write_text(V1.replace("max_steps = 6", "max_steps = 9"))

    with pytest.raises(OpsreadyError) as refused:
        agent_versions.snapshot(tmp_path, "helper")

    message = str(refused.value)
    assert "already holds a different definition of helper 1.0.0" in message
    assert "bump `version`" in message and "1.0.1" in message
    assert (tmp_path / "versions" / "helper" / "1.0.0.toml").read_text() == V1  # untouched
    [listed] = agent_versions.list_versions(tmp_path)
    assert listed.is_edited_without_bump and listed.archived_versions == ["1.0.0"]


def test_list_orders_versions_and_shows_unarchived_agents(tmp_path: Path) -> None:
    for version in ("1.10.0", "1.9.0", "1.0.0"):
        release(tmp_path, V1.replace('"1.0.0"', f'"{version}"'), version)
    (tmp_path / "helper.toml").write_text(V1.replace('"1.0.0"', '"2.0.0"'))

    [listed] = agent_versions.list_versions(tmp_path)

    assert listed.archived_versions == ["1.0.0", "1.9.0", "1.10.0"]
    assert (listed.current_version, listed.is_current_archived) == ("2.0.0", False)
    assert not listed.is_edited_without_bump


def test_unknown_agent_or_version_is_one_line_listing_what_exists(tmp_path: Path) -> None:
    release(tmp_path, V1, "1.0.0", current=True)
    release(tmp_path, V2, "1.1.0")

    with pytest.raises(UnknownVersionError, match=r"^unknown version '9\.9' of helper "):
        agent_versions.diff(tmp_path, "helper", "9.9", "current")
    with pytest.raises(UnknownVersionError) as version:
        agent_versions.diff(tmp_path, "helper", "../../etc/passwd", "current")
    with pytest.raises(UnknownAgentError) as agent:
        agent_versions.diff(tmp_path, "nobody", "1.0.0", "current")

    assert str(version.value).endswith("(archived: 1.0.0, 1.1.0; or current)")
    assert str(agent.value) == "unknown agent 'nobody' (known agents: helper)"


def test_cli_diff_prints_the_summary_then_the_text_and_errors_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    release(tmp_path, V1, "1.0.0")
    release(tmp_path, V2, "1.1.0", current=True)
    monkeypatch.setenv("OPSREADY_AGENTS_DIR", str(tmp_path))

    assert main(["agents", "diff", "helper", "1.0.0", "1.1.0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("helper: 1.0.0 -> 1.1.0\n  version ")
    assert "\n--- " in out and "\n+++ " in out

    assert main(["agents", "diff", "helper", "1.0.0", "7"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "opsready: error: unknown version '7' of helper (archived: 1.0.0, 1.1.0; or current)\n"
    )


@pytest.mark.parametrize("agent", list_agents(PROJECT_ROOT / "agents"))
def test_every_agent_has_an_archived_copy_of_its_current_version(agent: str) -> None:
    agents_dir = PROJECT_ROOT / "agents"
    [listed] = [a for a in agent_versions.list_versions(agents_dir) if a.agent == agent]
    assert listed.problem is None, listed.problem
    archive = f"agents/versions/{agent}/{listed.current_version}.toml"
    assert listed.is_current_archived, (
        f"{agent} {listed.current_version} has no archived copy ({archive}): "
        f"run `opsready agents snapshot {agent}` and commit {archive}"
    )
    assert not listed.is_edited_without_bump, (
        f"agents/{agent}.toml was edited without bumping its version: it differs from {archive}. "
        f"Bump `version` in agents/{agent}.toml, then run `opsready agents snapshot {agent}` "
        f"and commit the new archive (released versions stay as they were)"
    )
