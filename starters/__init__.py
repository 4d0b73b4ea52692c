"""Starters: the `opsready` CLI and the typed client API service code uses to start,
query, approve and halt agent runs."""

from starters.client import OpsreadyClient, RunSummary

__all__ = ["OpsreadyClient", "RunSummary"]
