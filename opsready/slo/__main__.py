"""`python -m opsready.slo [AGENTS_DIR]`: print the Prometheus rules for every agent's SLOs
(what monitoring/prometheus/opsready-rules.yml holds for the shipped agents)."""

from __future__ import annotations

import sys
from pathlib import Path

from opsready.errors import OpsreadyError
from opsready.slo.definitions import load_agent_slos
from opsready.slo.prometheus import rules_yaml


def main(argv: list[str]) -> int:
    try:
        slos = load_agent_slos(Path(argv[0] if argv else "agents"))
    except OpsreadyError as err:
        print(err, file=sys.stderr)
        return err.exit_code
    sys.stdout.write(rules_yaml(slos))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
