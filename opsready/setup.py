"""`opsready setup`: register opsready's search attributes on a Temporal namespace.

The local dev server gets them at start (temporal-dev/); a real cluster or Temporal Cloud
namespace needs this once (Cloud: the API key needs namespace admin rights).
"""

from __future__ import annotations

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from opsready.errors import ConfigError
from workflows.contract import CLI_TYPES

log = structlog.get_logger("opsready.setup")

_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


async def ensure_search_attributes(client: Client) -> list[str]:
    """Add the search attributes the namespace lacks; return the names added."""
    existing = await _existing(client)
    missing = {
        name: _INDEXED[kind]
        for name, kind in CLI_TYPES.items()
        if existing is None or name not in existing
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


async def check_search_attributes(client: Client) -> None:
    """Refuse to run workers on a namespace that lacks opsready's search attributes: every
    run upserts them, and a run whose upsert is refused retries its workflow task forever.
    Nothing is checked where they cannot be listed (the time-skipping test server, a key
    without the right to list them: then a warning)."""
    try:
        existing = await _existing(client)
    except RPCError as err:
        log.warning("search attributes not checked", namespace=client.namespace, error=err.message)
        return
    missing = [] if existing is None else sorted(set(CLI_TYPES) - existing)
    if missing:
        raise ConfigError(
            f"namespace {client.namespace} lacks opsready's search attributes "
            f"{', '.join(missing)}: register them with `opsready setup` (once per namespace)"
        )


async def _existing(client: Client) -> set[str] | None:
    """The namespace's custom search attributes; None where they cannot be listed."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        # The time-skipping test server can add search attributes but not list them.
        if err.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
        return None
    return set(listed.custom_attributes)
