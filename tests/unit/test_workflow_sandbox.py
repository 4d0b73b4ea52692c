"""The workflow sandbox passes the `workflows` package through (opsready.plugin), and
`AgentRun` runs outside it: its runtime checks no longer see workflow code. These checks
take their place, on every line of `workflows/`, executed by a test or not
(docs/decisions.md, "Workflow sandbox")."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from opsready.plugin import SANDBOX_PASSTHROUGH, sandboxed_runner
from opsready.settings import PROJECT_ROOT
from workflows.agent_run import AgentRunWorkflow

# What workflow code may import: deterministic standard modules, the SDK, pydantic, itself.
ALLOWED_IMPORTS = frozenset(
    {
        "__future__",
        "abc",
        "asyncio",
        "collections",
        "contextlib",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "functools",
        "hashlib",
        "itertools",
        "json",
        "math",
        "re",
        "statistics",
        "typing",
        "unicodedata",
        "pydantic",
        "temporalio",
        "workflows",
    }
)
# Builtins whose result differs between processes or that do I/O (`hash` of a str is
# salted per process; `print` repeats on replay: use workflow.logger).
REFUSED_BUILTINS = frozenset({"open", "print", "input", "hash", "id", "breakpoint", "exec", "eval"})
# Clock reads on datetime/date: use workflow.now().
CLOCK_READS = frozenset({"now", "utcnow", "today"})


def workflow_files() -> list[Path]:
    return sorted((PROJECT_ROOT / "workflows").rglob("*.py"))


def _is_date_class(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    return name in ("datetime", "date")


def nondeterminism(path: Path) -> Iterator[str]:
    """Every import outside ALLOWED_IMPORTS, refused builtin and clock read in a file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                if module.split(".")[0] not in ALLOWED_IMPORTS:
                    yield f"line {node.lineno}: imports {module}"
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in REFUSED_BUILTINS:
                yield f"line {node.lineno}: calls {func.id}()"
            if (
                isinstance(func, ast.Attribute)
                and func.attr in CLOCK_READS
                and _is_date_class(func.value)
            ):
                yield f"line {node.lineno}: reads the clock ({func.attr}()); use workflow.now()"


def test_workflow_code_does_nothing_the_sandbox_would_refuse() -> None:
    found = [
        f"{path.relative_to(PROJECT_ROOT)} {problem}"
        for path in workflow_files()
        for problem in nondeterminism(path)
    ]
    assert not found, "non-deterministic workflow code:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import random\n", "imports random"),
        ("from time import monotonic\n", "imports time"),
        ("x = hash('run')\n", "calls hash()"),
        ("import datetime\nx = datetime.datetime.now()\n", "reads the clock (now())"),
        ("from datetime import date\nx = date.today()\n", "reads the clock (today())"),
    ],
)
def test_the_check_refuses_what_the_sandbox_refuses(
    tmp_path: Path, source: str, problem: str
) -> None:
    module = tmp_path / "bad.py"
    module.write_text(source)
    assert any(problem in found for found in nondeterminism(module))


def test_the_workflow_clock_is_allowed(tmp_path: Path) -> None:
    module = tmp_path / "good.py"
    module.write_text("from temporalio import workflow\nx = workflow.now()\n")
    assert list(nondeterminism(module)) == []


def test_the_plugin_passes_workflows_and_pydantic_through_the_sandbox() -> None:
    runner = sandboxed_runner(SandboxedWorkflowRunner())
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert {"workflows", "pydantic"} <= runner.restrictions.passthrough_modules
    assert set(SANDBOX_PASSTHROUGH) <= runner.restrictions.passthrough_modules
    # A runner a test chose on purpose is left as it is.
    unsandboxed = UnsandboxedWorkflowRunner()
    assert sandboxed_runner(unsandboxed) is unsandboxed


def test_agent_run_is_the_workflow_these_checks_alone_guard() -> None:
    # The hot path runs unsandboxed (the sandbox entered per payload cost it half its CPU);
    # if it ever goes back into the sandbox, this module's docstring is wrong.
    defn = workflow._Definition.must_from_class(AgentRunWorkflow)
    assert defn.sandboxed is False
