"""A read-only agent's run answered from the answer cache, and a completed run's answer
kept for the next same question (`[answer_cache]`; keys: `workflows.answer_cache`).

Only runs whose config carries `answer_cache` (read-only agents, not shadows) ask; the
lookup is the run's first activity after its config, so a hit costs no model call.
Deterministic (workflow code).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import calls
from workflows.answer_cache import cache_key
from workflows.control_types import AnswerLookup, AnswerStore
from workflows.payloads import RunConfig
from workflows.run_record import RunRecord
from workflows.types import RunStatus, StopReason

# Patch id: runs of agents with an answer cache look up and store answers (new commands).
ANSWER_CACHE_PATCH = "answer-cache"


def key_of(config: RunConfig, text: str) -> str | None:
    """The run's cache key, when it may use the cache (asks the patch only then)."""
    if config.answer_cache is None or not workflow.patched(ANSWER_CACHE_PATCH):
        return None
    return cache_key(config.agent, config.prompt_version, text, model=config.primary.model)


async def answer_from_cache(record: RunRecord, key: str) -> bool:
    """End the run with the cached answer, if there is one; True when it did."""
    try:
        found = await calls.lookup_answer(AnswerLookup(key=key))
    except ActivityError as err:  # no cache: ask the model, as without one
        workflow.logger.warning("answer cache unavailable: %s", calls.cause(err))
        return False
    if found.answer is None:
        return False
    record.state.output = found.answer
    record.finish(RunStatus.COMPLETED, StopReason.ANSWERED, "answered from the cache")
    return True


async def remember_answer(record: RunRecord, config: RunConfig, key: str) -> None:
    """Keep a completed run's answer (not one served from the cache) for the next asker."""
    state = record.state
    if state.status is not RunStatus.COMPLETED or not state.output or state.step == 0:
        return
    assert config.answer_cache is not None
    try:
        await calls.store_answer(
            AnswerStore(key=key, answer=state.output, ttl_seconds=config.answer_cache.ttl_seconds)
        )
    except ActivityError as err:
        workflow.logger.warning("answer not cached: %s", calls.cause(err))
