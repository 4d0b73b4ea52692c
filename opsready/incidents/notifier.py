"""Pages: PagerDuty Events v2, Slack incoming webhooks and generic JSON, sent over httpx.

Delivery errors are typed so an activity's retry policy can tell a pager that is down
(`PageUnavailableError`, retry) from one that refuses the page (`PageRejectedError`, fix
the configuration). With no URL configured the page is a structured log line.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import structlog

from opsready.errors import OpsreadyError
from opsready.redaction import Redactor
from workflows.incident_types import Page, Severity

PageFormat = Literal["pagerduty", "slack", "json"]
PAGE_FORMATS: tuple[str, ...] = ("pagerduty", "slack", "json")

PAGERDUTY_SEVERITY: dict[Severity, str] = {
    Severity.SEV1: "critical",
    Severity.SEV2: "error",
    Severity.SEV3: "warning",
    Severity.SEV4: "info",
}
_SLACK_HEADER_LIMIT = 150  # Slack refuses longer plain_text headers
_PD_SUMMARY_LIMIT = 1024  # PagerDuty truncates summaries there
_RETRYABLE_4XX = frozenset({408, 425, 429})

log = structlog.get_logger("opsready.incidents.pages")


class PageDeliveryError(OpsreadyError):
    """A page was not delivered; `is_retryable` says whether trying again may help."""

    is_retryable = True

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class PageUnavailableError(PageDeliveryError):
    """The pager is down, slow or unreachable (5xx, 429, timeout, connection): retry."""


class PageRejectedError(PageDeliveryError):
    """The pager refused the page (4xx): a wrong URL, routing key or format; retries won't help."""

    is_retryable = False


def redacted(page: Page, redactor: Redactor | None = None) -> Page:
    """The page with secrets and personal data masked in its free text and details."""
    redactor = redactor or Redactor.from_env()
    return page.model_copy(
        update={
            "title": redactor.redact(page.title),
            "details": redactor.redact(page.details),
        }
    )


def summary_line(page: Page) -> str:
    verb = {"trigger": "", "acknowledge": "acknowledged: ", "resolve": "resolved: "}[page.action]
    return f"[{page.severity.value}] {verb}{page.title} ({page.agent})"


def pagerduty_body(page: Page, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event; acknowledge and resolve carry only the dedup key."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": page.action,
        "dedup_key": page.dedup_key,
    }
    if page.action == "trigger":
        body["payload"] = {
            "summary": summary_line(page)[:_PD_SUMMARY_LIMIT],
            "severity": PAGERDUTY_SEVERITY[page.severity],
            "source": "opsready",
            "component": page.agent,
            "group": f"tier-{page.tier}",
            "custom_details": _details(page),
        }
        if page.link:
            body["links"] = [{"href": page.link, "text": "incident in Temporal"}]
    return body


def slack_body(page: Page) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` for notifications, blocks for the channel."""
    text = summary_line(page)
    fields = [
        f"*Incident*\n{page.incident_id}",
        f"*Severity*\n{page.severity.value}",
        f"*Agent*\n{page.agent}",
        f"*Paged*\ntier {page.tier}: {', '.join(page.targets) or 'nobody named'}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:_SLACK_HEADER_LIMIT]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    details = "\n".join(f"• {key}: {value}" for key, value in sorted(page.details.items()))
    if details:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": details[:2900]}})
    if page.link:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{page.link}|open>"}]}
        )
    return {"text": text, "blocks": blocks}


def json_body(page: Page) -> dict[str, Any]:
    return {"kind": "incident_page", "summary": summary_line(page), **page.model_dump(mode="json")}


def page_body(page: Page, fmt: PageFormat, routing_key: str | None = None) -> dict[str, Any]:
    """The request body for `fmt`, from an already redacted page."""
    if fmt == "pagerduty":
        if not routing_key:
            raise PageRejectedError(
                "PagerDuty pages need a routing key (the integration key of the service)"
            )
        return pagerduty_body(page, routing_key)
    if fmt == "slack":
        return slack_body(page)
    if fmt == "json":
        return json_body(page)
    raise PageRejectedError(f"unknown page format {fmt!r} (one of {', '.join(PAGE_FORMATS)})")


async def send_page(
    client: httpx.AsyncClient,
    url: str | None,
    fmt: PageFormat,
    page: Page,
    timeout_s: float,
    *,
    routing_key: str | None = None,
    redactor: Redactor | None = None,
) -> None:
    """Deliver one page, or log it when no URL is configured. Raises PageDeliveryError."""
    safe = redacted(page, redactor)
    if not url:
        log.warning(
            "incident page (no pager URL configured)",
            summary=summary_line(safe),
            **safe.model_dump(mode="json"),
        )
        return
    body = page_body(safe, fmt, routing_key)
    try:
        response = await client.post(url, json=body, timeout=timeout_s)
    except httpx.TimeoutException:
        raise PageUnavailableError(f"pager did not answer within {timeout_s:g} s") from None
    except httpx.HTTPError as err:
        raise PageUnavailableError(f"pager unreachable: {type(err).__name__}") from None
    status = response.status_code
    if status >= 500 or status in _RETRYABLE_4XX:
        raise PageUnavailableError(f"pager answered {status}", status_code=status)
    if status >= 400:
        raise PageRejectedError(
            f"pager refused the page with {status}: check the URL, routing key and format",
            status_code=status,
        )


def _details(page: Page) -> dict[str, Any]:
    return {
        "incident_id": page.incident_id,
        "tier": page.tier,
        "targets": page.targets,
        **({"link": page.link} if page.link else {}),
        **page.details,
    }
