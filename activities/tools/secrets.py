"""The secrets tools declare, from the worker's environment (`OPSREADY_SECRET_<NAME>`) or a
secrets file (`OPSREADY_SECRETS_FILE`: TOML, `name = "value"` lines).

A tool gets exactly the secrets it declared, in its `ToolContext`, inside the activity:
they never enter a workflow payload, a history or a log line. A worker refuses to start
when an agent enables a tool whose secret is missing, with one line naming the agent
file, the tool and the variable to set.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from activities.tools.registry import Tool
from opsready.agents import list_agents, load_agent
from opsready.errors import ConfigError, OpsreadyError
from opsready.settings import Settings

ENV_PREFIX = "OPSREADY_SECRET_"


def env_name(secret: str) -> str:
    """`payments_api_key` -> `OPSREADY_SECRET_PAYMENTS_API_KEY`."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", secret).upper()


class SecretStore:
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {_normal(key): value for key, value in values.items()}

    @classmethod
    def load(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> SecretStore:
        """The secrets file (when set) and every `OPSREADY_SECRET_*` variable; a variable
        wins over the file."""
        values: dict[str, str] = {}
        if settings.secrets_file is not None:
            values.update(_read_file(settings.secrets_file))
        environ = os.environ if environ is None else environ
        return cls(values | _from_env(environ))

    def has(self, secret: str) -> bool:
        return bool(self._values.get(_normal(secret)))

    def for_tool(self, tool: Tool) -> dict[str, str]:
        """Only what `tool` declared."""
        return {name: self._values[_normal(name)] for name in tool.secrets if self.has(name)}


def check_tool_secrets(agents_dir: Path, tools: Iterable[Tool], store: SecretStore) -> None:
    """Refuse to start when an agent enables a tool whose declared secret is missing.
    Agent files that do not load are left to the runs, which fail with their error."""
    by_name = {tool.name: tool for tool in tools}
    for agent in list_agents(agents_dir):
        try:
            definition, _ = load_agent(agents_dir, agent)
        except OpsreadyError:
            continue
        for name in definition.tools:
            tool = by_name.get(name)
            for secret in tool.secrets if tool else ():
                if not store.has(secret):
                    raise ConfigError(
                        f"{agents_dir / f'{agent}.toml'}: tools.{name}: the tool needs secret "
                        f"{secret!r}; set {env_name(secret)} or add it to OPSREADY_SECRETS_FILE"
                    )


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "_", name.lower())


def _from_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        _normal(key.removeprefix(ENV_PREFIX)): value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX) and value.strip()
    }


def _read_file(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"OPSREADY_SECRETS_FILE: cannot read {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    values = {}
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigError(f'{path}: {key}: a secret must be a string (name = "value")')
        values[_normal(key)] = value
    return values
