"""Approval notifications: a webhook over httpx when configured, a log line otherwise."""

from __future__ import annotations

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from opsready.telemetry import Telemetry
from workflows.contract import Activity
from workflows.payloads import NotifyApproversInput

log = structlog.get_logger("opsready.approvals")


class NotifyActivities:
    def __init__(
        self,
        webhook_url: str | None,
        ui_url: str,
        namespace: str = "default",
        telemetry: Telemetry | None = None,
    ) -> None:
        self._webhook_url = webhook_url
        self._ui_url = ui_url.rstrip("/")
        self._namespace = namespace
        self._telemetry = telemetry or Telemetry.create(span_processors=[], metric_readers=[])

    @activity.defn(name=Activity.NOTIFY_APPROVERS)
    async def notify_approvers(self, notice: NotifyApproversInput) -> None:
        approval = notice.approval
        link = f"{self._ui_url}/namespaces/{self._namespace}/workflows/{notice.run_id}"
        payload = {
            "kind": "approval_escalated" if notice.is_escalation else "approval_requested",
            "run_id": notice.run_id,
            "agent": notice.agent,
            "request_id": approval.request_id,
            "tool": approval.tool,
            "reason": approval.reason,
            "recipients": notice.recipients,
            "link": link,
            "approve_with": f"opsready approve {notice.run_id} --request-id "
            f"{approval.request_id} --as NAME",
        }
        if activity.info().attempt == 1:
            event = "escalated" if notice.is_escalation else "requested"
            labels = {"opsready.agent": notice.agent, "opsready.variant": notice.context.variant}
            self._telemetry.instruments.approvals.add(
                1, self._telemetry.attributes({**labels, "event": event})
            )
        if self._webhook_url is None:
            log.warning("approval notice (no OPSREADY_APPROVAL_WEBHOOK_URL set)", **payload)
            return
        async with httpx.AsyncClient(timeout=10) as client:
            try:
                response = await client.post(self._webhook_url, json=payload)
            except httpx.HTTPError as err:
                raise ApplicationError(
                    f"approval webhook unreachable: {type(err).__name__}"
                ) from None
        if response.status_code >= 400:
            raise ApplicationError(
                f"approval webhook answered {response.status_code}",
                non_retryable=400 <= response.status_code < 500 and response.status_code != 429,
            )
