"""A worker refuses a namespace without opsready's search attributes (every run would fail
its upsert and retry forever), in one line that says to run `opsready setup`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesResponse
from temporalio.service import RPCError, RPCStatusCode

from opsready.errors import ConfigError
from opsready.setup import check_search_attributes
from workflows.contract import CLI_TYPES


def client_listing(names: list[str] | RPCError) -> Any:
    async def list_search_attributes(request: object) -> ListSearchAttributesResponse:
        if isinstance(names, RPCError):
            raise names
        response = ListSearchAttributesResponse()
        for name in names:
            response.custom_attributes[name] = 2  # KEYWORD: the type is not checked
        return response

    service = SimpleNamespace(list_search_attributes=list_search_attributes)
    return SimpleNamespace(namespace="prod", operator_service=service)


async def test_a_namespace_without_the_new_attributes_is_refused_naming_them() -> None:
    older = [name for name in CLI_TYPES if name not in ("AgentTallies", "AgentLatencySeconds")]
    with pytest.raises(ConfigError) as caught:
        await check_search_attributes(client_listing(older))
    assert str(caught.value) == (
        "namespace prod lacks opsready's search attributes AgentLatencySeconds, AgentTallies: "
        "register them with `opsready setup` (once per namespace)"
    )


async def test_a_complete_namespace_or_one_that_cannot_be_listed_passes() -> None:
    await check_search_attributes(client_listing(list(CLI_TYPES)))
    denied = RPCError("no right to list", RPCStatusCode.PERMISSION_DENIED, b"")
    await check_search_attributes(client_listing(denied))
