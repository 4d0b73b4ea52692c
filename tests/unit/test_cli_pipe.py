"""`opsready … | head`: when the reader goes away, the CLI stops quietly, as Unix tools do,
instead of reporting an internal error."""

from __future__ import annotations

import subprocess
import sys

from opsready.settings import PROJECT_ROOT

# A command with more output than a pipe holds (the `slo rules` handler, made long).
SCRIPT = """
import sys
import starters.slo_cli as slo_cli
def long_output(args, settings):
    for _ in range(20000):
        print("x" * 100)
    return 0
slo_cli.cmd_rules = long_output
from starters.cli import main
sys.exit(main(["slo", "rules"]))
"""


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(10) == b"x" * 10
    process.stdout.close()  # as `head -c 10` does
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=30) == 141
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
