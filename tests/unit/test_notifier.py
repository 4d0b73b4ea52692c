"""Pages reach a real loopback pager in each format; failures are typed for retry policies."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from structlog.testing import capture_logs

from opsready.incidents.notifier import (
    PageRejectedError,
    PageUnavailableError,
    page_body,
    send_page,
)
from opsready.redaction import MASK, Redactor
from tests.fakes.pager_server import PagerServer
from workflows.incident_types import Page, Severity

SECRET = "sk-live-0123456789abcdefghijkl"


def make_page(**fields: object) -> Page:
    values: dict[str, object] = {
        "incident_id": "incident-support-triage-slo",
        "dedup_key": "support-triage-slo",
        "title": "support-triage answers fail",
        "agent": "support-triage",
        "severity": Severity.SEV2,
        "tier": 1,
        "targets": ["support-oncall"],
        "link": "http://localhost:8233/namespaces/default/workflows/incident-support-triage-slo",
        "details": {"burn_rate": 14.4, "api_key": SECRET, "note": f"seen with {SECRET}"},
    }
    values.update(fields)
    return Page.model_validate(values)


@pytest.fixture
async def pager() -> AsyncIterator[PagerServer]:
    server = await PagerServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def test_pagerduty_trigger_reaches_the_pager_as_an_events_v2_event(
    pager: PagerServer, client: httpx.AsyncClient
) -> None:
    await send_page(client, pager.url, "pagerduty", make_page(), 5, routing_key="R0UTING")
    [body] = pager.bodies
    assert (body["routing_key"], body["event_action"], body["dedup_key"]) == (
        "R0UTING",
        "trigger",
        "support-triage-slo",
    )
    payload = body["payload"]
    assert payload["summary"] == "[SEV2] support-triage answers fail (support-triage)"
    assert (payload["severity"], payload["source"], payload["component"]) == (
        "error",
        "opsready",
        "support-triage",
    )
    assert payload["custom_details"]["burn_rate"] == 14.4
    assert payload["custom_details"]["incident_id"] == "incident-support-triage-slo"


async def test_secrets_in_details_are_redacted_before_they_leave(
    pager: PagerServer, client: httpx.AsyncClient
) -> None:
    await send_page(client, pager.url, "json", make_page(), 5)
    [body] = pager.bodies
    assert SECRET not in str(body)
    assert body["details"]["api_key"] == MASK
    assert MASK in body["details"]["note"]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.SEV1, "critical"),
        (Severity.SEV2, "error"),
        (Severity.SEV3, "warning"),
        (Severity.SEV4, "info"),
    ],
)
def test_pagerduty_severity_follows_the_incident_severity(
    severity: Severity, expected: str
) -> None:
    body = page_body(make_page(severity=severity), "pagerduty", routing_key="k")
    assert body["payload"]["severity"] == expected


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_pagerduty_acknowledge_and_resolve_name_only_the_dedup_key(action: str) -> None:
    body = page_body(make_page(action=action), "pagerduty", routing_key="k")
    assert body == {"routing_key": "k", "event_action": action, "dedup_key": "support-triage-slo"}


def test_pagerduty_without_a_routing_key_is_refused() -> None:
    with pytest.raises(PageRejectedError, match="routing key"):
        page_body(make_page(), "pagerduty")


async def test_slack_page_has_text_and_blocks(
    pager: PagerServer, client: httpx.AsyncClient
) -> None:
    await send_page(client, pager.url, "slack", make_page(title="x" * 300), 5)
    [body] = pager.bodies
    assert body["text"].startswith("[SEV2] xxx")
    header, fields, details, context = body["blocks"]
    assert header["type"] == "header" and len(header["text"]["text"]) == 150
    assert "*Paged*\ntier 1: support-oncall" in [f["text"] for f in fields["fields"]]
    assert "burn_rate: 14.4" in details["text"]["text"]
    assert SECRET not in details["text"]["text"]
    assert "|open>" in context["elements"][0]["text"]


async def test_generic_json_page_carries_the_whole_page(
    pager: PagerServer, client: httpx.AsyncClient
) -> None:
    await send_page(client, pager.url, "json", make_page(action="resolve"), 5)
    [body] = pager.bodies
    assert body["kind"] == "incident_page"
    assert (body["action"], body["severity"], body["targets"]) == (
        "resolve",
        "SEV2",
        ["support-oncall"],
    )
    assert body["summary"].startswith("[SEV2] resolved: ")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_retryable(
    pager: PagerServer, client: httpx.AsyncClient, status: int
) -> None:
    pager.answer = status
    with pytest.raises(PageUnavailableError) as caught:
        await send_page(client, pager.url, "json", make_page(), 5)
    assert caught.value.is_retryable and caught.value.status_code == status
    assert len(pager.bodies) == 1


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_client_errors_are_not_retryable(
    pager: PagerServer, client: httpx.AsyncClient, status: int
) -> None:
    pager.answer = status
    with pytest.raises(PageRejectedError, match=f"refused the page with {status}") as caught:
        await send_page(client, pager.url, "pagerduty", make_page(), 5, routing_key="k")
    assert not caught.value.is_retryable


async def test_a_hanging_pager_times_out_as_retryable(
    pager: PagerServer, client: httpx.AsyncClient
) -> None:
    pager.answer = "hang"
    started = time.monotonic()
    with pytest.raises(PageUnavailableError, match=r"did not answer within 0\.3 s") as caught:
        await send_page(client, pager.url, "json", make_page(), 0.3)
    assert caught.value.is_retryable
    assert time.monotonic() - started < 5
    assert len(pager.bodies) == 1  # it arrived; the answer never came


async def test_an_unreachable_pager_is_retryable(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PageUnavailableError, match="unreachable: ConnectError") as caught:
        await send_page(client, f"http://127.0.0.1:{port}/page", "json", make_page(), 5)
    assert caught.value.is_retryable


async def test_without_a_url_the_page_is_a_redacted_log_line(client: httpx.AsyncClient) -> None:
    with capture_logs() as logs:
        await send_page(client, None, "pagerduty", make_page(), 5, redactor=Redactor(["note"]))
    [line] = logs
    assert line["event"] == "incident page (no pager URL configured)"
    assert line["summary"] == "[SEV2] support-triage answers fail (support-triage)"
    assert line["details"]["note"] == MASK and line["details"]["api_key"] == MASK
    assert line["log_level"] == "warning"
