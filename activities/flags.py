"""Feature flags: one LaunchDarkly client per worker process, and the flag activities.

With `LAUNCHDARKLY_SDK_KEY` the client talks to LaunchDarkly (or a Relay Proxy); without,
it reads `temporal-dev/flags.json` through the SDK's file data source with auto-update, so
editing the file changes flags live. Flags are evaluated only here, in activities: their
results (value, variation, reason) are recorded in history, so replays never re-evaluate.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import structlog
from ldclient import Context, LDClient
from ldclient.config import Config
from ldclient.integrations import Files
from temporalio import activity

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

    def __init__(self, ld: LDClient, source: str) -> None:
        self.ld = ld
        self.source = source

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
        if not ld.is_initialized():
            log.warning("flags not available; agent defaults apply", source=source)
        return cls(ld, source)

    @property
    def is_ready(self) -> bool:
        return bool(self.ld.is_initialized())

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
        scopes: list[tuple[KillSwitchScope, str, str]] = [
            ("global", kill_switch_key(), "all agents"),
            ("agent", kill_switch_key(agent=agent), f"agent {agent}"),
        ]
        if tool is not None:
            scopes.append(("tool", kill_switch_key(tool=tool), f"tool {tool}"))
        for scope, key, covers in scopes:
            if self.evaluate(key, context, False).value is True:
                return KillSwitchCheck(
                    is_killed=True,
                    flag=key,
                    scope=scope,
                    reason=f"kill switch {key} is on ({covers})",
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


class FlagActivities:
    def __init__(self, flags: FlagClient) -> None:
        self._flags = flags

    @activity.defn(name=Activity.CHECK_KILL_SWITCH)
    async def check_kill_switch(self, request: KillSwitchInput) -> KillSwitchCheck:
        # Runs recorded before the `lean-run` patch ask before every call; newer ones ask
        # the config, model and tool activities to check (workflows/agent_run.py).
        return check_kill_switch(self._flags, request)
