"""Service-level objectives of agents: their definitions, and Prometheus rules for them.

Imported on their own: the SLI source over Temporal visibility (`source`, `queries`), where
each SLO stands (`status`), the monitor's Schedule (`schedule`), and the HTML report
(`report`, `report_data`: they pull in matplotlib).
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
