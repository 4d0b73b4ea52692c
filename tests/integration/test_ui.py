"""The Temporal UI as an operator uses it, in headless Chromium (Debian's `chromium`,
driven by Playwright's Python API; Playwright's own browser download cannot work here):
the awaiting-approval list from the URL `make dev` prints, a run's Current Details, an
approval sent through the UI's Signal form, the run completing. Screenshots are kept
under .pytest-artifacts/ui/."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from activities.models.local import LocalProvider
from opsready.client import OpsreadyClient
from opsready.settings import PROJECT_ROOT, Settings
from opsready.ui_links import OPERATOR_VIEWS, list_url, run_url
from tests.integration.test_cli import BIG_REFUND
from workers.app import build_activities, build_worker
from workers.devserver import LocalTemporal, free_port, local_temporal
from workflows.types import RunStatus

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / ".pytest-artifacts" / "ui"
# The flags this machine's closed network needs (no background requests, no QUIC).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # one UI step: a page load, a list refresh, a dialog


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} not found: apt-get install chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
async def ui_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalTemporal]:
    """A dev server of its own with its UI on a free port (`dev_env` has no UI)."""
    _require_chromium()
    settings = Settings(data_dir=tmp_path_factory.mktemp("ui"))
    async with local_temporal(settings, ui_port=free_port()) as server:
        yield server


@pytest.fixture
async def page(ui_server: LocalTemporal) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    profile = tempfile.mkdtemp(prefix="opsready-chromium-")
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
            )
            page = await browser.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
            await browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    print(f"screenshot: {path}")


async def test_an_operator_finds_the_waiting_run_reads_it_and_approves_it_in_the_ui(
    ui_server: LocalTemporal, page: Any, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", task_queue=f"ui-{uuid.uuid4().hex[:8]}", worker_versioning=False
    )
    temporal = ui_server.env.client
    client = OpsreadyClient(temporal, settings)
    ui = ui_server.ui_url
    assert ui is not None
    activities = build_activities(settings, providers={"local": LocalProvider()})
    async with build_worker(temporal, settings, activities=activities):
        run_id = await client.start_run("support-triage", BIG_REFUND, user_id="customer-17")
        pending = await client.wait_for_approval(run_id, timeout=30)

        for _label, query in OPERATOR_VIEWS:  # every printed list is a query the server takes
            await temporal.count_workflows(f'WorkflowType="AgentRun" AND {query}')
        # The list `make dev` prints: only runs that wait for a person.
        awaiting = dict(OPERATOR_VIEWS)["awaiting approval"]
        await page.goto(list_url(ui, awaiting))
        await page.get_by_role("link", name=run_id).wait_for()
        await _shot(page, "1-awaiting-approval-list")

        await page.get_by_role("link", name=run_id).click()
        await page.get_by_role("tab", name="User Metadata").click()
        # The UI renders Current Details (markdown) in a frame of its own.
        details = page.frame_locator("#user-metadata-current-details").locator("body")
        await details.get_by_text(pending.request_id).wait_for()
        current = " ".join((await details.inner_text()).split())
        assert current.startswith("awaiting_approval at step"), current
        assert "refund_order" in current and "approval_decision" in current
        await _shot(page, "2-current-details")

        await page.get_by_role("button", name="More Actions").click()
        await page.get_by_role("menuitem", name="Send a Signal").click()
        # The page keeps a second, hidden copy of the form: act on the visible one.
        form = page.get_by_role("dialog").filter(visible=True)
        await form.get_by_role("button", name="Select a signal").click()
        await form.get_by_role("option", name="approval_decision").click()
        payload = {"approved": True, "approver": "alice", "comment": "approved in the UI"}
        editor = form.get_by_role("textbox", name="Data")
        await editor.click()
        await editor.press_sequentially(json.dumps(payload))
        # Leaving the editor pretty-prints the JSON and the form grows: leave it first, so
        # the click lands on Submit where it then is.
        await form.get_by_text("Single JSON payload supported.").click()
        await form.get_by_text('"approver": "alice",').wait_for()
        await _shot(page, "3-signal-form")
        await form.get_by_role("button", name="Submit").click()
        await form.wait_for(state="hidden")

        await client.wait_for_status(run_id, RunStatus.COMPLETED, timeout=30)
        result = await client.result(run_id)
        assert result.status is RunStatus.COMPLETED
        assert [(a.outcome, a.approver) for a in result.approvals] == [("approved", "alice")]
        await page.goto(run_url(ui, run_id))
        await page.get_by_text("Completed", exact=True).first.wait_for()
        await _shot(page, "4-completed")
