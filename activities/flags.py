"""Feature flags: one LaunchDarkly client per worker process, and the flag activities.

With `LAUNCHDARKLY_SDK_KEY` the client talks to LaunchDarkly (or a Relay Proxy); without,
it reads the local flag file (the working copy `.opsready/flags.json`, seeded from the
shipped `temporal-dev/flags.json`) through the SDK's file data source with auto-update, so
`opsready flags` changes flags live. Flags are evaluated only here, in activities: their
results (value, variation, reason) are recorded in history, so replays never re-evaluate.

Kill switches fail closed: when the flag data cannot be trusted (a flag file that does not
parse, which the SDK reports as `DataSourceState.INTERRUPTED`; flags never loaded: a file
unreadable at start, LaunchDarkly unreachable at start) or a switch's value is not a
boolean, the check says `is_unknown`, and runs refuse new work and destructive tools.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import structlog
from ldclient import Context, LDClient
from ldclient.config import Config
from ldclient.integrations import Files
from ldclient.interfaces import DataSourceState
from temporalio import activity

from opsready.flags import working_flag_file
from opsready.settings import Settings
from workflows.contract import Activity, KillSwitchScope, SafetyKind, kill_switch_key
from workflows.payloads import KillSwitchCheck, KillSwitchInput, RunContext
from workflows.types import FlagEvaluation

log = structlog.get_logger("opsready.flags")


def evaluation_context(agent: str, context: RunContext | None = None) -> Context:
    """The multi-kind context a run is evaluated in: agent, user and tenant (when known)."""
    if context is None:
        return _evaluation_context(agent, None, None)
    return _evaluation_context(agent, context.user_id, context.tenant_id)


@functools.lru_cache(maxsize=4096)
def _evaluation_context(agent: str, user_id: str | None, tenant_id: str | None) -> Context:
    # Built once per agent, user and tenant (contexts are immutable): every model and tool
    # call of a run checks its kill switches in the same one.
    kinds = [Context.builder(agent).kind("agent").build()]
    if user_id:
        kinds.append(Context.builder(user_id).kind("user").build())
    if tenant_id:
        kinds.append(Context.builder(tenant_id).kind("tenant").build())
    return kinds[0] if len(kinds) == 1 else Context.create_multi(*kinds)


class FlagClient:
    """A LaunchDarkly client and the one way opsready evaluates a flag."""

    def __init__(self, ld: LDClient, source: str, *, is_file: bool = False) -> None:
        self.ld = ld
        self.source = source
        self.is_file = is_file

    @classmethod
    def from_settings(cls, settings: Settings) -> FlagClient:
        if settings.launchdarkly_sdk_key is not None:
            uri = settings.launchdarkly_base_uri
            key = settings.launchdarkly_sdk_key.get_secret_value()
            if uri:  # a Relay Proxy (or a test server) serves all three
                config = Config(key, base_uri=uri, stream_uri=uri, events_uri=uri)
            else:
                config = Config(key)
            source = f"LaunchDarkly ({uri or 'launchdarkly.com'})"
        else:
            # The file source must not be combined with offline=True: offline ignores it.
            working_flag_file(settings)
            config = Config(
                "local-flags-file",
                update_processor_class=Files.new_data_source(
                    paths=[str(settings.flags_file)],
                    auto_update=True,
                    poll_interval=settings.flags_poll_seconds,
                ),
                send_events=False,
            )
            source = f"file {settings.flags_file}"
        ld = LDClient(config, start_wait=settings.flags_start_wait_seconds)
        client = cls(ld, source, is_file=settings.launchdarkly_sdk_key is None)
        why = client.unavailable()
        if why:
            log.error("flags not available: agent defaults apply, kill switches unknown", why=why)
        return client

    @property
    def is_ready(self) -> bool:
        return bool(self.ld.is_initialized())

    def unavailable(self) -> str | None:
        """Why the flag data cannot be trusted right now, or None. The file source keeps
        the last good flags when the file stops parsing (a half-written or broken file) and
        reports INTERRUPTED: that is unknown too. LaunchDarkly's own interruptions (a
        dropped stream) keep values LaunchDarkly served whole, so only "never loaded" counts."""
        status = self.ld.data_source_status_provider.status
        error = status.error.message if status.error is not None else None
        if not self.ld.is_initialized():
            return f"flags from {self.source} not loaded" + (f" ({error})" if error else "")
        if self.is_file and status.state is not DataSourceState.VALID:
            detail = error or status.state.value
            return f"flag file unreadable, last good flags kept ({self.source}: {detail})"
        return None

    def evaluate(self, key: str, context: Context, default: Any) -> FlagEvaluation:
        detail = self.ld.variation_detail(key, context, default)
        reason = detail.reason or {}
        error = reason.get("errorKind")
        return FlagEvaluation(
            key=key,
            value=detail.value,
            variation=detail.variation_index,
            reason=str(reason.get("kind", "UNKNOWN")),
            error=str(error) if error else None,
            is_default=detail.variation_index is None,
        )

    def kill_switch(self, agent: str, tool: str | None, context: Context) -> KillSwitchCheck:
        """The first switch that is on; else unknown when a switch cannot be read (the flag
        data is not trustworthy, or a value is not a boolean); else off."""
        why = self.unavailable()
        if why is not None and not self.ld.is_initialized():
            return KillSwitchCheck(
                is_killed=False, is_unknown=True, reason=f"kill switch state unknown: {why}"
            )
        scopes: list[tuple[KillSwitchScope, str, str]] = [
            ("global", kill_switch_key(), "all agents"),
            ("agent", kill_switch_key(agent=agent), f"agent {agent}"),
        ]
        if tool is not None:
            scopes.append(("tool", kill_switch_key(tool=tool), f"tool {tool}"))
        problems = [why] if why else []
        for scope, key, covers in scopes:
            value = self.evaluate(key, context, False).value
            if value is True:  # on in the last good data too: fail closed
                return KillSwitchCheck(
                    is_killed=True,
                    flag=key,
                    scope=scope,
                    reason=f"kill switch {key} is on ({covers})",
                )
            if not isinstance(value, bool):
                problems.append(f"{key} is {value!r}, not true or false")
        if problems:
            return KillSwitchCheck(
                is_killed=False,
                is_unknown=True,
                reason="kill switch state unknown: " + "; ".join(problems),
            )
        return KillSwitchCheck(is_killed=False)

    def close(self) -> None:
        self.ld.close()  # type: ignore[no-untyped-call]


_clients: dict[tuple[object, ...], FlagClient] = {}
_clients_lock = threading.Lock()


def shared_flag_client(settings: Settings) -> FlagClient:
    """The process's flag client for these settings (one per worker process and source)."""
    key = (
        settings.launchdarkly_sdk_key.get_secret_value() if settings.launchdarkly_sdk_key else None,
        settings.launchdarkly_base_uri,
        str(settings.flags_file),
        settings.flags_poll_seconds,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = FlagClient.from_settings(settings)
        return client


def check_kill_switch(flags: FlagClient, request: KillSwitchInput) -> KillSwitchCheck:
    """The switch covering this agent (and tool) that is on, logged as a safety event. An
    in-memory evaluation (the SDK keeps flags in memory and updates them from its own
    threads): no I/O, so the activities call it on the event loop, before their work."""
    context = evaluation_context(request.agent, request.context)
    check = flags.kill_switch(request.agent, request.tool, context)
    if check.is_killed:
        log.warning(
            "safety event",
            kind=SafetyKind.KILL_SWITCH,
            flag=check.flag,
            tool=request.tool,
            detail=check.reason,
        )
    return check


def checked_kill_switch(flags: FlagClient | None, request: KillSwitchInput) -> KillSwitchCheck:
    """The check the config, model and tool activities make themselves (lean runs): as
    `check_kill_switch`, but failing closed where the check activity's failure would: a
    worker without a flag client, or a check that raises, is an unknown switch
    (`is_unchecked`), so the run refuses what an unknown switch forbids and records
    `kill_switch_unchecked`."""
    if flags is None:
        detail = "this worker has no flag client"
    else:
        try:
            return check_kill_switch(flags, request)
        except Exception as err:  # whatever broke, the switch's state is not known
            detail = f"{type(err).__name__}: {err}"
            log.error(
                "kill switch not checked", agent=request.agent, tool=request.tool, error=detail
            )
    return KillSwitchCheck(
        is_killed=False,
        is_unknown=True,
        is_unchecked=True,
        reason=f"kill switch not checked: {detail}",
    )


class FlagActivities:
    def __init__(self, flags: FlagClient) -> None:
        self._flags = flags

    @activity.defn(name=Activity.CHECK_KILL_SWITCH)
    async def check_kill_switch(self, request: KillSwitchInput) -> KillSwitchCheck:
        # Runs recorded before the `lean-run` patch ask before every call; newer ones ask
        # the config, model and tool activities to check (workflows/agent_run.py).
        return check_kill_switch(self._flags, request)
