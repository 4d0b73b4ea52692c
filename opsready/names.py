"""Names an operator types (agents, tools, request ids): what is allowed, what exists, and
what they probably meant, so a typo is refused with a suggestion instead of acted on."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path

from opsready.agents import AgentDefinition, list_agents, load_agent
from opsready.errors import ConfigError, OpsreadyError, UnknownAgentError

# The one definition of a request id: it becomes part of a run id, of idempotency keys
# (`run id : step : call id`), of visibility queries and of shell commands we print.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
REQUEST_ID_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_request_id(request_id: str) -> str:
    """`request_id` as given, or an OpsreadyError naming the allowed characters."""
    if not REQUEST_ID_PATTERN.match(request_id):
        raise OpsreadyError(f"invalid request id {request_id!r}: use {REQUEST_ID_RULE}")
    return request_id


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean X?` for close matches, else `` (for the end of an error message)."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def agent_definitions(agents_dir: Path) -> dict[str, AgentDefinition]:
    """Every agent that loads; a broken file is left out here (its own commands report it)."""
    definitions: dict[str, AgentDefinition] = {}
    for name in list_agents(agents_dir) if agents_dir.is_dir() else []:
        try:
            definitions[name] = load_agent(agents_dir, name)[0]
        except (ConfigError, UnknownAgentError):
            continue
    return definitions


def known_agents(agents_dir: Path) -> list[str]:
    return list_agents(agents_dir) if agents_dir.is_dir() else []


def known_tools(agents_dir: Path) -> list[str]:
    """The tools any agent may call (the `[tools.NAME]` tables of the definitions)."""
    return sorted({tool for d in agent_definitions(agents_dir).values() for tool in d.tools})


def unknown_agent(name: str, agents_dir: Path) -> UnknownAgentError:
    known = known_agents(agents_dir)
    listed = f" (agents in {agents_dir}: {', '.join(known) or 'none'})"
    return UnknownAgentError(f"unknown agent {name!r}{did_you_mean(name, known) or listed}")


def is_known_agent(name: str, agents_dir: Path) -> bool:
    return name in known_agents(agents_dir)
