"""Incident activities: open (or join) an incident, load its policy, page, record MTTD and
MTTR, write the postmortem draft. Runbook steps are in `incident_steps`, evidence in
`incident_evidence`.

`opsready.incident.open` is what the SLO monitor calls: it takes an `OpenIncidentRequest`
and answers an `OpenIncidentResult` (`opsready.incidents.service.open_or_join`).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from opsready.errors import ConfigError, OpsreadyError
from opsready.incidents import (
    PageRejectedError,
    PageUnavailableError,
    draft_postmortem,
    load_incident_config,
    send_page,
)
from opsready.incidents.evidence import file_name, incident_folder
from opsready.incidents.service import open_or_join
from opsready.settings import Settings
from opsready.telemetry import Telemetry
from workflows.contract import Activity, ErrorType
from workflows.incident_payload_types import (
    IncidentConfigInput,
    IncidentPolicy,
    IncidentTimings,
    PageReceipt,
    PostmortemInput,
    PostmortemResult,
)
from workflows.incident_types import OpenIncidentRequest, OpenIncidentResult, Page


class IncidentActivities:
    def __init__(
        self, settings: Settings, telemetry: Telemetry, namespace: str = "default"
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._namespace = namespace

    @activity.defn(name=Activity.INCIDENT_OPEN)
    async def open_incident(self, request: OpenIncidentRequest) -> OpenIncidentResult:
        """Open the incident for the alert's dedup key, or join the one open for it."""
        try:
            return await open_or_join(
                activity.client(), request, task_queue=self._settings.task_queue
            )
        except OpsreadyError as err:
            raise ApplicationError(str(err)) from None  # Temporal or a race: try again

    @activity.defn(name=Activity.INCIDENT_CONFIG)
    async def load_policy(self, request: IncidentConfigInput) -> IncidentPolicy:
        try:
            config = await asyncio.to_thread(load_incident_config, self._settings.agents_dir)
        except ConfigError as err:
            raise ApplicationError(
                str(err), type=ErrorType.INVALID_INCIDENT_CONFIG, non_retryable=True
            ) from None
        return IncidentPolicy(
            matrix=config.matrix,
            rota=config.oncall.rota_for(request.agent),
            runbooks=[runbook for runbook in config.runbooks if runbook.is_for(request.agent)],
        )

    @activity.defn(name=Activity.INCIDENT_NOTIFY)
    async def notify(self, page: Page) -> PageReceipt:
        settings = self._settings
        link = f"{settings.ui_url.rstrip('/')}/namespaces/{self._namespace}/workflows/"
        page = page.model_copy(update={"link": link + page.incident_id})
        key = settings.pager_routing_key
        try:
            async with httpx.AsyncClient() as client:
                await send_page(
                    client,
                    settings.pager_url,
                    settings.pager_format,
                    page,
                    settings.pager_timeout_seconds,
                    routing_key=key.get_secret_value() if key else None,
                )
        except PageRejectedError as err:
            raise ApplicationError(
                str(err), type=ErrorType.PAGE_REJECTED, non_retryable=True
            ) from None
        except PageUnavailableError as err:
            raise ApplicationError(str(err), type="PageUnavailable") from None
        return PageReceipt(channel=settings.pager_format if settings.pager_url else "log")

    @activity.defn(name=Activity.INCIDENT_POSTMORTEM)
    async def write_postmortem(self, request: PostmortemInput) -> PostmortemResult:
        status = request.status
        folder = incident_folder(self._settings.incidents_dir, status.id, status.opened_at)
        path = folder / f"{file_name(status.id)}-postmortem.md"
        await asyncio.to_thread(_write_text, path, draft_postmortem(status))
        return PostmortemResult(path=str(path))

    @activity.defn(name=Activity.INCIDENT_TIMINGS)
    async def record_timings(self, timings: IncidentTimings) -> None:
        if activity.info().attempt > 1:
            return  # recorded by the first attempt already (at most once is enough here)
        labels = self._telemetry.attributes(
            {
                "opsready.agent": timings.agent,
                "opsready.incident.severity": timings.severity.value,
                "opsready.incident.trigger": timings.trigger,
            }
        )
        instruments = self._telemetry.instruments
        if timings.mttd_s is not None:
            instruments.incident_mttd.record(timings.mttd_s, labels)
        if timings.mttr_s is not None:
            instruments.incident_mttr.record(timings.mttr_s, labels)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
