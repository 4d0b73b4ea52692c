"""Search attributes of agent runs: registered by temporal-dev/ and `opsready setup`.

They make `temporal workflow list --query "AgentStatus='awaiting_approval'"` work.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

AGENT_NAME = SearchAttributeKey.for_keyword("AgentName")
AGENT_STATUS = SearchAttributeKey.for_keyword("AgentStatus")
AGENT_USER = SearchAttributeKey.for_keyword("AgentUser")
AGENT_TENANT = SearchAttributeKey.for_keyword("AgentTenant")
AGENT_VARIANT = SearchAttributeKey.for_keyword("AgentVariant")
AGENT_COST_USD = SearchAttributeKey.for_float("AgentCostUsd")
AGENT_TOKENS = SearchAttributeKey.for_int("AgentTokens")

ALL: tuple[SearchAttributeKey[str] | SearchAttributeKey[float] | SearchAttributeKey[int], ...] = (
    AGENT_NAME,
    AGENT_STATUS,
    AGENT_USER,
    AGENT_TENANT,
    AGENT_VARIANT,
    AGENT_COST_USD,
    AGENT_TOKENS,
)

# name -> the type word the temporal CLI's --search-attribute flag takes
CLI_TYPES: dict[str, str] = {
    "AgentName": "Keyword",
    "AgentStatus": "Keyword",
    "AgentUser": "Keyword",
    "AgentTenant": "Keyword",
    "AgentVariant": "Keyword",
    "AgentCostUsd": "Double",
    "AgentTokens": "Int",
}
