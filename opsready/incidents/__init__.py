"""Incidents outside the workflow: configuration, pages, evidence bundles, postmortems, and
the client side (`open_or_join`, the `Incidents` API the CLI uses).

The deterministic parts (types, severity, escalation, runbook plans) live in
`workflows.incident_types`, `workflows.incident_policy` and `workflows.incident_runbooks`.
"""

from opsready.incidents.config import IncidentConfig, OnCallConfig, load_incident_config
from opsready.incidents.evidence import BundleRef, EvidenceError, verify_bundle, write_bundle
from opsready.incidents.notifier import (
    PageDeliveryError,
    PageFormat,
    PageRejectedError,
    PageUnavailableError,
    send_page,
)
from opsready.incidents.postmortem import draft_postmortem
from opsready.incidents.service import Incidents, IncidentSummary, open_or_join

__all__ = [
    "BundleRef",
    "EvidenceError",
    "IncidentConfig",
    "IncidentSummary",
    "Incidents",
    "OnCallConfig",
    "PageDeliveryError",
    "PageFormat",
    "PageRejectedError",
    "PageUnavailableError",
    "draft_postmortem",
    "load_incident_config",
    "open_or_join",
    "send_page",
    "verify_bundle",
    "write_bundle",
]
