"""Links into the Temporal UI that an operator opens first: the workflow list filtered to
what needs attention (a visibility query in the URL), and one run's page."""

from __future__ import annotations

from urllib.parse import quote

from workflows.contract import AGENT_RUN_WORKFLOW

# (label, visibility query): the lists `make dev` and the demo print. The UI's list has no
# column for the Agent* attributes until someone adds them (README, "Temporal UI").
OPERATOR_VIEWS: tuple[tuple[str, str], ...] = (
    ("awaiting approval", 'AgentStatus="awaiting_approval"'),
    ("failed", 'AgentStatus IN ("failed", "timed_out", "budget_exceeded")'),
    # Runs that ended before AgentStopReason existed are only in the list of all halts.
    ("halted by a kill switch", 'AgentStopReason="kill_switch"'),
    ("halted (any way)", 'AgentStatus="halted"'),
)


def list_url(ui_url: str, query: str, namespace: str = "default") -> str:
    """The workflow list of `namespace` filtered by a visibility `query` (agent runs only)."""
    full = f'WorkflowType="{AGENT_RUN_WORKFLOW}" AND {query}'
    return f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows?query={quote(full, safe='')}"


def run_url(ui_url: str, run_id: str, namespace: str = "default") -> str:
    return (
        f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
        f"{quote(run_id, safe='')}"
    )


def operator_views(ui_url: str, namespace: str = "default") -> list[tuple[str, str]]:
    return [(label, list_url(ui_url, query, namespace)) for label, query in OPERATOR_VIEWS]
