"""Connecting to Temporal: envconfig (profile file or TEMPORAL_* variables) + `OpsreadyPlugin`."""

from __future__ import annotations

import os
import re
import textwrap
from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile

from opsready.errors import ConfigError, TemporalUnavailableError
from opsready.plugin import OpsreadyPlugin
from opsready.telemetry import Telemetry

DEFAULT_ADDRESS = "localhost:7233"


def connect_config(address: str | None = None) -> dict[str, Any]:
    """Client.connect arguments from envconfig; `address` wins over the profile."""
    try:
        profile = ClientConfigProfile.load(profile=os.environ.get("TEMPORAL_PROFILE"))
    except Exception as err:  # envconfig raises plain errors for bad files
        raise ConfigError(f"Temporal client configuration: {err}") from None
    config: dict[str, Any] = dict(profile.to_client_connect_config())
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    config.setdefault("namespace", "default")
    return config


async def connect(
    address: str | None = None, *, telemetry: Telemetry | None = None, **extra: Any
) -> Client:
    """A client with `OpsreadyPlugin`. With `telemetry` its calls start traces: the
    starter's span is the root of the run's trace, and workers built on it continue it."""
    config = connect_config(address)
    plugin = OpsreadyPlugin(
        tracer=telemetry.tracer if telemetry else None, tracing=telemetry is not None
    )
    extra["plugins"] = [plugin, *extra.get("plugins", [])]
    try:
        return await Client.connect(**config, **extra)
    except RuntimeError as err:
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {config['target_host']} (namespace "
            f"{config['namespace']}): {connect_failure(str(err))}. Start it with "
            "`make dev`, or set TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE"
        ) from None


# The innermost reason in the SDK's transport error: `message: "Connection refused"`,
# `error: "failed to lookup address information: ..."`, `ConnectError("tcp connect error"`.
_REASONS = (
    re.compile(r'message: "([^"]+)"'),
    re.compile(r'error: "([^"]+)"'),
    re.compile(r'ConnectError\("([^"]+)"'),
)


def connect_failure(text: str) -> str:
    """Why a connection failed, in the operator's words: the transport's innermost reason
    (the SDK's message nests Rust debug output), whole words, one line."""
    for pattern in _REASONS:
        found = pattern.findall(text)
        if found:
            return str(found[-1]).lower()
    first = text.splitlines()[0] if text else "connection failed"
    first = first.removeprefix("Failed client connect: ").split(" tonic::")[0].rstrip(": ")
    return textwrap.shorten(first, width=160, placeholder=" ...") or "connection failed"
