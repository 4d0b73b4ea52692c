"""What a run costs its history (issue 13, the `lean-run` patch): the bare sequence of its
activities plus a fixed handful of events, however many steps it takes; and its outcome,
carried by its last memo upsert, recorded by the worker once and never on a replay."""

from __future__ import annotations

import asyncio
from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.worker import Replayer

from activities.outcomes import OutcomeStore
from opsready.plugin import OpsreadyPlugin
from tests.fakes.scripted import answer, calls
from tests.workflows.conftest import Harness
from workers.app import WORKFLOWS
from workers.outcome_recorder import OutcomeRecorder
from workflows.contract import OUTCOME_MEMO, Activity
from workflows.payloads import ChatMessage, ModelCallInput, RunOutcome
from workflows.types import RunStatus

SEARCHES = 3


def search_three_times(request: ModelCallInput) -> ChatMessage:
    if request.step <= SEARCHES:
        return calls(request.step, ("search_kb", {"query": f"attempt {request.step}"}))
    return answer("found it")


async def test_a_run_adds_a_fixed_handful_of_events_to_its_calls(harness: Harness) -> None:
    text = harness.script("search three times", search_three_times)
    handle = await harness.start("tester", text)
    assert (await handle.result()).status is RunStatus.COMPLETED
    history = await handle.fetch_history()
    kinds = Counter(EventType.Name(e.event_type) for e in history.events)
    scheduled = Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    )
    # The calls a bare workflow would make too, and nothing else: no outcome activity.
    assert scheduled == {
        Activity.RESOLVE_CONFIG: 1,
        Activity.MODEL_CHAT: SEARCHES + 1,
        Activity.TOOL_RUN: SEARCHES,
    }
    # On top of them: the patch (its marker and the change-version search attribute), the
    # variant once the config is known, the run deadline's timer (never cancelled), and
    # the last search attributes and memo. No kill-switch local activity, no upsert per
    # model call.
    assert kinds["EVENT_TYPE_MARKER_RECORDED"] == 1
    assert kinds["EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 3
    assert kinds["EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED"] == 1
    assert kinds["EVENT_TYPE_TIMER_STARTED"] == 1
    assert kinds["EVENT_TYPE_TIMER_CANCELED"] == 0


class Recorded:
    """An outcome store that only remembers what it was given."""

    def __init__(self) -> None:
        self.outcomes: list[RunOutcome] = []

    def record_finished(self, outcome: RunOutcome) -> None:
        self.outcomes.append(outcome)


async def test_the_last_upsert_carries_the_outcome_the_worker_records_once(
    harness: Harness,
) -> None:
    text = harness.script("search then answer", search_three_times)
    handle = await harness.start("tester", text)
    result = await handle.result()
    memo = await (await handle.describe()).memo()
    outcome = RunOutcome.model_validate(memo[OUTCOME_MEMO])
    assert (outcome.run_id, outcome.status, outcome.steps) == (
        handle.id,
        result.status,
        result.steps,
    )
    assert outcome.usage == result.usage
    # The worker's recorder wrote the same outcome to its store (by a writer thread).
    store = OutcomeStore(harness.ledger.path.parent / "outcomes.sqlite")
    async with asyncio.timeout(10):
        while True:
            stored = [o for o in store.read("tester") if o.run_id == handle.id]
            if stored:
                break
            await asyncio.sleep(0.02)
    assert stored == [outcome]

    # A replay (a worker rebuilding the run after an eviction) records nothing again.
    recorded = Recorded()
    replayer = Replayer(
        workflows=WORKFLOWS,
        plugins=[OpsreadyPlugin(tracing=False)],
        interceptors=[OutcomeRecorder(recorded)],  # type: ignore[arg-type]
    )
    await replayer.replay_workflow(await handle.fetch_history())
    assert recorded.outcomes == []
