"""Stable activity names: a public contract, because recorded histories name them.

Workflows call activities by these names (never by importing the implementations), and
the worker registers the implementations under them. Renaming one breaks replay.
"""

RESOLVE_CONFIG = "opsready.config.resolve"
MODEL_CHAT = "opsready.model.chat"
TOOL_RUN = "opsready.tool.run"
NOTIFY_APPROVERS = "opsready.approval.notify"
RECORD_OUTCOME = "opsready.outcome.record"

# Error types activities raise that retrying cannot fix; workflows read them from failures.
UNKNOWN_AGENT = "UnknownAgent"
INVALID_AGENT_DEFINITION = "InvalidAgentDefinition"
UNKNOWN_TOOL = "UnknownTool"
MODEL_REQUEST_REJECTED = "ModelRequestRejected"
UNKNOWN_MODEL_PROVIDER = "UnknownModelProvider"
