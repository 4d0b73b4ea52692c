"""Connecting to Temporal: envconfig (profile file or TEMPORAL_* variables) + `OpsreadyPlugin`."""

from __future__ import annotations

import os
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
            f"{config['namespace']}): {str(err).splitlines()[0][:200]}. Start it with "
            "`make dev`, or set TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE"
        ) from None
