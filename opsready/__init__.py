"""opsready: run AI agents in production on Temporal, with the controls an operator needs."""

__version__ = "0.1.0"
