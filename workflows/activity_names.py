"""Stable activity names: a public contract, because recorded histories name them.

Workflows call activities by these names (never by importing the implementations), and
the worker registers the implementations under them. Renaming one breaks replay.
"""

RESOLVE_CONFIG = "opsready.config.resolve"
MODEL_CHAT = "opsready.model.chat"
TOOL_RUN = "opsready.tool.run"
NOTIFY_APPROVERS = "opsready.approval.notify"
RECORD_OUTCOME = "opsready.outcome.record"
ROLLOUT_SET_PERCENT = "rollout.set_percent"
ROLLOUT_COMPARE_COHORTS = "rollout.compare_cohorts"
ROLLOUT_SET_DEPLOYMENT_RAMP = "rollout.set_deployment_ramp"
CHECK_KILL_SWITCH = "opsready.flags.kill_switch"
COMPARE_SHADOW = "opsready.shadow.compare"

# Error types activities raise that retrying cannot fix; workflows read them from failures.
UNKNOWN_AGENT = "UnknownAgent"
INVALID_AGENT_DEFINITION = "InvalidAgentDefinition"
UNKNOWN_TOOL = "UnknownTool"
MODEL_REQUEST_REJECTED = "ModelRequestRejected"
UNKNOWN_MODEL_PROVIDER = "UnknownModelProvider"
INVALID_ROLLOUT = "InvalidRollout"  # unknown flag, variation, deployment or build: fix it
