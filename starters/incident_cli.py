"""`opsready incident`: list, read and answer incidents (`Incident` workflows), open one by
hand, and check an incident's evidence bundle against the hash it recorded."""

from __future__ import annotations

import argparse
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from opsready.connection import connect
from opsready.errors import OpsreadyError
from opsready.incidents.evidence import verify_bundle
from opsready.incidents.service import Incidents
from opsready.settings import Settings
from starters import incident_render as render
from starters.cli_common import (
    JSON_OUTPUT,
    TEMPORAL,
    Handler,
    Subcommands,
    add_command,
    add_group,
    operator,
    print_json,
)
from workflows.incident_types import (
    EvidenceRef,
    IncidentState,
    IncidentTrigger,
    OpenIncidentRequest,
    Severity,
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Step = Callable[[argparse.Namespace, Incidents], Awaitable[int]]


def register(commands: Subcommands) -> None:
    incident = add_group(
        commands,
        "incident",
        help="incidents: list, show, acknowledge, note, run runbook steps, resolve, evidence",
        description="Incidents are Incident workflows: opened by the SLO monitor (or by hand), "
        "paged tier by tier until acknowledged, answered with runbook steps, resolved with a "
        "postmortem draft and an evidence bundle.",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[TEMPORAL, JSON_OUTPUT])
    by = argparse.ArgumentParser(add_help=False)
    by.add_argument("--by", default=operator(), help="who does it (default: login name)")

    listing = add_command(
        incident, "list", _on_incidents(_list), parents=(common,), help="recent incidents"
    )
    listing.add_argument("--state", choices=[s.value for s in IncidentState], help="IncidentState")
    listing.add_argument("--agent", help="AgentName")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (50)")

    show = add_command(
        incident,
        "show",
        _on_incidents(_show),
        parents=(common,),
        help="an incident: severity, pages, plan, timeline, evidence",
    )
    show.add_argument("incident_id", metavar="ID", help="incident-KEY, or the dedup KEY")

    ack = add_command(
        incident,
        "ack",
        _on_incidents(_ack),
        parents=(common, by),
        help="acknowledge: escalation to the next tier stops",
    )
    ack.add_argument("incident_id", metavar="ID")

    note = add_command(
        incident, "note", _on_incidents(_note), parents=(common, by), help="add a note"
    )
    note.add_argument("incident_id", metavar="ID")
    note.add_argument("--text", required=True, help="the note (kept on the timeline)")

    run = add_command(
        incident,
        "run",
        _on_incidents(_run),
        parents=(common, by),
        help="run a planned runbook step (see `show`); risky ones need --approved-by",
    )
    run.add_argument("incident_id", metavar="ID")
    run.add_argument("step", metavar="STEP", help="the step's key, RUNBOOK/STEP")
    run.add_argument("--approved-by", help="a second person who approves a risky step")

    resolve = add_command(
        incident,
        "resolve",
        _on_incidents(_resolve),
        parents=(common, by),
        help="resolve: evidence, MTTD/MTTR and a postmortem draft",
    )
    resolve.add_argument("incident_id", metavar="ID")
    resolve.add_argument("--summary", required=True, help="how it ended (in the postmortem)")

    opening = add_command(
        incident,
        "open",
        _on_incidents(_open),
        parents=(common, by),
        help="open an incident by hand (or join the open one with the same --dedup-key)",
    )
    opening.add_argument("--agent", required=True, help="the agent it is about")
    opening.add_argument("--title", required=True, help="one line: what is wrong")
    opening.add_argument(
        "--severity", required=True, choices=[s.value for s in Severity], help="SEV1 is worst"
    )
    opening.add_argument("--detail", default="", help="more about what was seen")
    opening.add_argument("--dedup-key", help="default: manual-AGENT-<random>")
    opening.add_argument(
        "--user-impact", choices=["none", "some", "many"], default="none", help="(none)"
    )
    opening.add_argument("--safety", action="store_true", help="a safety incident")
    opening.add_argument(
        "--run", dest="runs", action="append", default=[], help="an affected run id (repeat)"
    )

    evidence = add_group(incident, "evidence", help="evidence bundles")
    verify = add_command(
        evidence,
        "verify",
        cmd_verify,
        parents=(common,),
        help="check a bundle against the sha256 its incident recorded (a changed byte fails)",
    )
    verify.add_argument("target", metavar="ID|PATH", help="an incident, or one bundle file")
    verify.add_argument("--sha256", help="check PATH against this hash, without Temporal")


def _on_incidents(step: Step) -> Handler:
    async def handler(args: argparse.Namespace, settings: Settings) -> int:
        client = await connect(args.address)
        return await step(args, Incidents(client, settings.task_queue))

    return handler


async def _list(args: argparse.Namespace, incidents: Incidents) -> int:
    if args.limit < 1:
        raise OpsreadyError("--limit must be at least 1")
    found = await incidents.list_incidents(state=args.state, agent=args.agent, limit=args.limit)
    if args.json:
        print_json(found)
    else:
        print(render.incidents_table(found))
    return 0


async def _show(args: argparse.Namespace, incidents: Incidents) -> int:
    status = await incidents.status(args.incident_id)
    print_json(status) if args.json else print(render.status_text(status))
    return 0


async def _ack(args: argparse.Namespace, incidents: Incidents) -> int:
    status = await incidents.ack(args.incident_id, by=args.by)
    if args.json:
        print_json(status)
    else:
        print(f"{status.id}: acknowledged by {status.acknowledged_by}; escalation stopped")
    return 0


async def _note(args: argparse.Namespace, incidents: Incidents) -> int:
    status = await incidents.note(args.incident_id, by=args.by, text=args.text)
    print_json(status) if args.json else print(f"{status.id}: note added by {args.by}")
    return 0


async def _run(args: argparse.Namespace, incidents: Incidents) -> int:
    run = await incidents.run_step(
        args.incident_id, args.step, by=args.by, approved_by=args.approved_by
    )
    if args.json:
        print_json(run)
    else:
        print(f"{run.step}: {'done' if run.is_ok else 'FAILED'}: {run.detail}")
    return 0 if run.is_ok else 1


async def _resolve(args: argparse.Namespace, incidents: Incidents) -> int:
    status = await incidents.resolve(args.incident_id, by=args.by, summary=args.summary)
    print_json(status) if args.json else print(render.resolved_text(status))
    return 0


async def _open(args: argparse.Namespace, incidents: Incidents) -> int:
    now = datetime.now(UTC)
    try:
        request = OpenIncidentRequest(
            dedup_key=args.dedup_key or f"manual-{args.agent}-{uuid.uuid4().hex[:8]}",
            title=args.title,
            agent=args.agent,
            trigger=IncidentTrigger(
                kind="manual", agent=args.agent, detail=args.detail, detected_at=now
            ),
            user_impact=args.user_impact,
            is_safety=args.safety,
            affected_run_ids=args.runs,
            opened_by=args.by,
            severity=Severity(args.severity),
        )
    except ValueError as err:
        raise OpsreadyError(f"invalid incident: {err}".splitlines()[0]) from None
    result = await incidents.open(request)
    if args.json:
        print_json(result)
    else:
        verb = "opened" if result.is_new else f"joined (now {result.joins} joins)"
        print(f"{result.incident_id}: {verb}, {result.severity.value} {result.state.value}")
    return 0


def _is_path(target: str) -> bool:
    return target.endswith(".tar.gz") or Path(target).is_file()


async def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """The recorded hash comes from the incident (by id, or the bundle's own incident for a
    PATH); `--sha256` checks a PATH against a hash given by hand, without Temporal."""
    is_path = _is_path(args.target)
    if args.sha256:
        if not is_path:
            raise OpsreadyError("--sha256 goes with a bundle PATH, not an incident id")
        digest = args.sha256.strip().lower()
        if not _SHA256.match(digest):
            raise OpsreadyError(f"--sha256 must be 64 hex digits, not {args.sha256!r}")
        refs = [EvidenceRef(path=args.target, sha256=digest)]
    else:
        client = await connect(args.address)
        incidents = Incidents(client, settings.task_queue)
        refs = await incidents.evidence_refs(args.target, is_path=is_path)
    for ref in refs:
        verify_bundle(ref.path, ref.sha256)  # EvidenceError: one line, exit 2
    if args.json:
        print_json([{**ref.model_dump(), "ok": True} for ref in refs])
    else:
        for ref in refs:
            print(f"ok  {ref.path}  sha256 {ref.sha256}")
    return 0
