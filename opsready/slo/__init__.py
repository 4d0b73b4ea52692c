"""Service-level objectives of agents: their definitions, and Prometheus rules for them.

The HTML report (`opsready.slo.report`) is imported on its own: it pulls in matplotlib.
"""

from opsready.slo.definitions import default_slos, load_agent_slos, load_slos, parse_slo_table
from opsready.slo.prometheus import rules_yaml

__all__ = [
    "default_slos",
    "load_agent_slos",
    "load_slos",
    "parse_slo_table",
    "rules_yaml",
]
