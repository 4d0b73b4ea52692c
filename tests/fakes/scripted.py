"""The scripted model provider for workflow tests (it lives in activities/testing.py, which
the golden-history recorder shares)."""

from activities.testing import Script, ScriptedProvider, answer, calls, tool_messages

__all__ = ["Script", "ScriptedProvider", "answer", "calls", "tool_messages"]
