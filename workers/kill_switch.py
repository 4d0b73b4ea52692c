"""The kill-switch listener: a background task beside each worker that halts open runs.

Runs check their kill switches before every model and tool call, but a run parked on an
approval or inside a long tool call makes no call for hours. So every worker process also
watches the global and per-agent switches and, when one turns on, sends `halt` to every open
run it covers: directly (one signal per run, concurrently) up to `direct_limit` runs, else
with one Temporal batch operation by visibility query. Halt is idempotent, so several
workers halting the same runs is harmless. Tool switches are not listened to: runs refuse a
killed tool themselves before calling it. When the switches cannot be read (flag data not
trustworthy, a value that is not a boolean), the listener logs it once per episode and
counts a `kill_switch_unknown` safety event; runs fail closed on their own checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from dataclasses import dataclass
from types import TracebackType

import structlog
from ldclient.interfaces import FlagChange
from temporalio.api.batch.v1 import BatchOperationSignal
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import BatchOperationState
from temporalio.api.workflowservice.v1 import (
    DescribeBatchOperationRequest,
    DescribeBatchOperationResponse,
    StartBatchOperationRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.flags import FlagClient, evaluation_context
from opsready.agents import list_agents
from opsready.settings import Settings
from opsready.telemetry import Telemetry
from workflows.contract import (
    AGENT_RUN_WORKFLOW,
    KILL_SWITCH,
    KILL_SWITCH_HALTER,
    SafetyKind,
    Signal,
    kill_switch_key,
)
from workflows.types import HaltRequest

log = structlog.get_logger("opsready.kill_switch")

OPEN_RUNS = f"WorkflowType='{AGENT_RUN_WORKFLOW}' AND ExecutionStatus='Running'"
HALTED_BY = KILL_SWITCH_HALTER
# Up to this many open runs, one signal per run from here is faster than a server batch
# (no batch workflow to start, no batcher rate limit); above it the server does the work,
# paced by its `worker.batcherRPS`. Every worker process sends its own halts, so a fleet of
# W workers sends W signals per run either way (the run ignores all but the first).
DIRECT_LIMIT = 500
DIRECT_CONCURRENCY = 64
# A batch's signals per second; the server caps it at its `worker.batcherRPS`.
BATCH_RPS = 1000.0
# While a switch stays on, look for runs it missed (started on a worker that had not seen
# the flip yet, not yet visible to the query): first after this long, then less often.
SWEEP_FIRST_SECONDS = 5.0
SWEEP_MAX_SECONDS = 300.0
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # what may go into a visibility query


def open_runs_query(agent: str | None = None, task_queue: str | None = None) -> str:
    """The visibility query for the open runs a switch covers."""
    query = OPEN_RUNS
    if agent is not None:
        query += f" AND AgentName='{agent}'"
    if task_queue is not None:
        query += f" AND TaskQueue='{task_queue}'"
    return query


@dataclass
class _Switch:
    """One switch as this process has seen it, and the halt it owes."""

    flag: str
    query: str
    is_on: bool = False
    is_owed: bool = False  # turned on, or the last halt failed: halt what still matches
    is_first: bool = False  # the owed halt is the transition's own (no count first)
    sending: asyncio.Task[None] | None = None  # a halt in progress (batch: until it ends)
    job_id: str | None = None  # the last batch, until it is seen to have ended
    sweep_at: float = 0.0
    sweep_every: float = SWEEP_FIRST_SECONDS

    @property
    def is_busy(self) -> bool:
        return self.sending is not None and not self.sending.done()


class KillSwitchListener:
    """On every flag change the SDK reports, and every `settings.flags_poll_seconds` in any
    case, evaluate the global and each agent's kill switch; on each turn from off to on,
    halt the open runs it covers (one halt per turn per process, retried on the next tick
    when it fails and runs still match).

    `agents`: the agents to watch (default: those in `settings.agents_dir`, re-read each
    tick). `task_queue`: only runs on that task queue (default: the whole namespace).
    `direct_limit`: up to this many runs get direct signals, more get one batch operation.
    """

    def __init__(
        self,
        client: Client,
        settings: Settings,
        flags: FlagClient,
        *,
        agents: list[str] | None = None,
        task_queue: str | None = None,
        direct_limit: int = DIRECT_LIMIT,
        batch_rps: float = BATCH_RPS,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._client = client
        self._telemetry = telemetry
        self._unknown: str | None = None  # why the switches cannot be read, while they cannot
        self._settings = settings
        self._flags = flags
        self._agents = agents
        self._task_queue = task_queue
        self._direct_limit = direct_limit
        self._batch_rps = batch_rps
        self._switches: dict[str, _Switch] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # set from the SDK's flag-change listener
        self._unreadable: list[str] = []  # switches whose value is not a boolean (last tick)
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._flags.ld.flag_tracker.add_listener(self._on_flag_change)
            self._task = asyncio.create_task(self._run(), name="kill-switch-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._flags.ld.flag_tracker.remove_listener(self._on_flag_change)
        tasks = [t for t in (self._task, *(s.sending for s in self._switches.values())) if t]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> KillSwitchListener:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        log.info("kill-switch listener started", every_s=self._settings.flags_poll_seconds)
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:  # never take the worker down; try again on the next tick
                log.exception("kill-switch check failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.flags_poll_seconds):
                    await self._wake.wait()

    def _on_flag_change(self, change: FlagChange) -> None:
        """Called on an SDK thread when flags change: tick now rather than at the next poll."""
        if self._loop is not None and change.key.startswith(KILL_SWITCH):
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._wake.set)

    def switches_on(self) -> set[str]:
        """The switches this listener has seen on (as of its last tick)."""
        return {flag for flag, switch in self._switches.items() if switch.is_on}

    # --- one tick -------------------------------------------------------------------------

    async def tick(self) -> None:
        """Evaluate every switch once and start the halts that are owed."""
        values = await asyncio.to_thread(self._evaluate)
        self._note_unknown(self._flags.unavailable(), self._unreadable)
        for flag in set(self._switches) - set(values):
            del self._switches[flag]  # an agent that is gone
        now = time.monotonic()
        for flag, (is_on, query) in values.items():
            switch = self._switches.setdefault(flag, _Switch(flag, query))
            if is_on and not switch.is_on:
                log.warning("kill switch turned on: halting its open runs", flag=flag, query=query)
                switch.is_owed, switch.is_first = True, True
                switch.sweep_every = SWEEP_FIRST_SECONDS
            elif switch.is_on and not is_on:
                log.info("kill switch turned off", flag=flag)
                switch.is_owed = False
            switch.is_on = is_on
            if not is_on or switch.is_busy:
                continue
            if switch.is_owed or now >= switch.sweep_at:
                switch.sending = asyncio.create_task(
                    self._halt(switch, count_first=not switch.is_first)
                )
                switch.is_first = False

    def _evaluate(self) -> dict[str, tuple[bool, str]]:
        """flag -> (is it on, the query of the runs it covers). In-memory, but off the loop:
        the SDK takes locks, and the agents are read from disk."""
        agents = (
            self._agents if self._agents is not None else list_agents(self._settings.agents_dir)
        )
        # The global switch covers every agent, known here or not: it is evaluated for no
        # agent in particular ("*"); runs still evaluate it for their own context.
        scopes: dict[str, tuple[str | None, str]] = {KILL_SWITCH: (None, "*")}
        for agent in agents:
            if _SAFE_NAME.match(agent):
                scopes[kill_switch_key(agent=agent)] = (agent, agent)
        values: dict[str, tuple[bool, str]] = {}
        self._unreadable = []
        for flag, (scope, context_key) in scopes.items():
            check = self._flags.evaluate(flag, evaluation_context(context_key), False)
            values[flag] = (check.value is True, open_runs_query(scope, self._task_queue))
            if not isinstance(check.value, bool):
                self._unreadable.append(f"{flag} is {check.value!r}, not true or false")
        return values

    def _note_unknown(self, unavailable: str | None, unreadable: list[str]) -> None:
        """Log once per episode that the switches cannot be read, and count it."""
        problems = [p for p in (unavailable, *unreadable) if p]
        why = "; ".join(problems) or None
        if why is not None and self._unknown is None:
            log.error("kill switches unknown: new runs and destructive tools are refused", why=why)
            if self._telemetry is not None:
                self._telemetry.instruments.safety_events.add(
                    1, {"kind": SafetyKind.KILL_SWITCH_UNKNOWN.value}
                )
        elif why is None and self._unknown is not None:
            log.info("kill switches readable again")
        self._unknown = why

    # --- halting --------------------------------------------------------------------------

    async def _halt(self, switch: _Switch, *, count_first: bool) -> None:
        """Halt the runs `switch` covers. A retry or a sweep counts first: nothing to do when
        no run matches. Failures are logged and leave the halt owed for the next tick."""
        started = time.monotonic()
        try:
            if switch.job_id is not None:
                if await self._is_batch_running(switch.job_id):
                    return  # never a second batch for a switch while one runs
                switch.job_id = None
            if count_first:
                left = (await self._client.count_workflows(switch.query)).count
                if left == 0:
                    self._halted(switch)
                    return
                log.warning("kill switch on and runs still open", flag=switch.flag, runs=left)
            ids = await self._list(switch.query, limit=self._direct_limit + 1)
            if ids and len(ids) <= self._direct_limit:
                await self._signal_each(switch, ids, started)
            elif ids:
                await self._batch(switch, started)
            self._halted(switch)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            switch.is_owed = True
            log.error(
                "kill switch halt failed; retrying on the next tick",
                flag=switch.flag,
                query=switch.query,
                error=f"{type(err).__name__}: {err}",
            )

    def _halted(self, switch: _Switch) -> None:
        switch.is_owed = False
        switch.sweep_at = time.monotonic() + switch.sweep_every
        switch.sweep_every = min(switch.sweep_every * 2, SWEEP_MAX_SECONDS)

    def _request(self, switch: _Switch) -> HaltRequest:
        return HaltRequest(reason=f"kill switch {switch.flag} is on", by=HALTED_BY)

    async def _list(self, query: str, *, limit: int) -> list[str]:
        return [run.id async for run in self._client.list_workflows(query, limit=limit)]

    async def _signal_each(self, switch: _Switch, run_ids: list[str], started: float) -> None:
        """One `halt` per run, concurrently. By workflow id, so a run that continued as new
        is still reached; a run that ended meanwhile is not an error."""
        request = self._request(switch)
        gate = asyncio.Semaphore(DIRECT_CONCURRENCY)

        async def signal(run_id: str) -> bool:
            async with gate:
                try:
                    await self._client.get_workflow_handle(run_id).signal(Signal.HALT, request)
                except RPCError as err:
                    if err.status is RPCStatusCode.NOT_FOUND:
                        return True
                    log.warning("halt signal failed", run_id=run_id, error=err.message)
                    return False
                return True

        sent = await asyncio.gather(*(signal(run_id) for run_id in run_ids))
        failed = sent.count(False)
        log.warning(
            "kill switch halted runs",
            flag=switch.flag,
            query=switch.query,
            path="direct",
            runs=len(run_ids),
            failed=failed,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        if failed:
            raise RuntimeError(f"{failed} of {len(run_ids)} halt signals failed")

    async def _batch(self, switch: _Switch, started: float) -> None:
        """One batch operation signalling `halt`, then watch it until it ends (so no second
        batch for this switch starts while it runs)."""
        job_id = f"kill-switch-{uuid.uuid4()}"
        payloads = await self._client.data_converter.encode([self._request(switch)])
        namespace = self._client.namespace
        reason = f"kill switch {switch.flag} is on"
        await self._client.workflow_service.start_batch_operation(
            StartBatchOperationRequest(
                namespace=namespace,
                visibility_query=switch.query,
                job_id=job_id,
                reason=reason,
                max_operations_per_second=self._batch_rps,
                signal_operation=BatchOperationSignal(
                    signal=Signal.HALT,
                    input=Payloads(payloads=payloads),
                    identity=self._client.identity,
                ),
            )
        )
        switch.job_id = job_id
        log.warning(
            "kill switch batch started",
            flag=switch.flag,
            query=switch.query,
            path="batch",
            job_id=job_id,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        while True:
            await asyncio.sleep(0.5)
            done = await self._describe_batch(job_id)
            if done.state != BatchOperationState.BATCH_OPERATION_STATE_RUNNING:
                break
        switch.job_id = None
        log.warning(
            "kill switch batch ended",
            flag=switch.flag,
            job_id=job_id,
            state=BatchOperationState.Name(done.state),
            runs=done.total_operation_count,
            signalled=done.complete_operation_count,
            failed=done.failure_operation_count,
            s=round(time.monotonic() - started, 2),
        )
        if done.state != BatchOperationState.BATCH_OPERATION_STATE_COMPLETED or (
            done.failure_operation_count
        ):
            raise RuntimeError(f"batch {job_id} ended {BatchOperationState.Name(done.state)}")

    async def _describe_batch(self, job_id: str) -> DescribeBatchOperationResponse:
        return await self._client.workflow_service.describe_batch_operation(
            DescribeBatchOperationRequest(namespace=self._client.namespace, job_id=job_id)
        )

    async def _is_batch_running(self, job_id: str) -> bool:
        try:
            state = (await self._describe_batch(job_id)).state
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return False  # gone (or never started): nothing runs
            raise
        return bool(state == BatchOperationState.BATCH_OPERATION_STATE_RUNNING)
