"""The layout's one rule: imports run one way (README, "Layout").

`starters -> opsready -> workflows`, `workers -> activities -> opsready -> workflows`;
nothing imports `starters`; `opsready` reads only the data modules of `workflows` (the
contract and the types), never workflow logic. Every import counts, function-level ones too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsready.settings import PROJECT_ROOT

PACKAGES = ("workflows", "activities", "opsready", "workers", "starters")
# Modules of `workflows` that hold only names and payload types, which outer layers may read.
WORKFLOW_DATA = (
    "workflows.contract",
    "workflows.types",
    "workflows.payloads",
    "workflows.redaction",  # the one set of redaction rules, pure: workflows and opsready share it
)


def _is_workflow_data(module: str) -> bool:
    return module in WORKFLOW_DATA or (
        module.startswith("workflows.") and module.endswith("_types")
    )


def allowed(importer: str, module: str) -> bool:
    """May module `importer` import project module `module`?"""
    layer, target = importer.split(".")[0], module.split(".")[0]
    if target == layer:
        return True
    if layer == "workflows":
        return False
    if layer == "opsready":
        return _is_workflow_data(module)
    if layer == "activities":
        return target in ("workflows", "opsready")
    if layer == "workers":
        return target in ("activities", "opsready", "workflows")
    if layer == "starters":
        if target == "opsready" or _is_workflow_data(module):
            return True
        # The console script is the composition root: its `worker`, `dev`, `demo`, `bench`
        # and `history` commands start workers or test tools, imported inside the command.
        return importer == "starters.cli" and target in ("workers", "tests")
    return False


def project_imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from workflows import contract` imports the module workflows.contract.
            top_level = "." not in node.module
            names = [f"{node.module}.{a.name}" for a in node.names] if top_level else [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in (*PACKAGES, "tests"):
                yield node.lineno, name


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (PROJECT_ROOT / package).rglob("*.py"))


def test_no_import_runs_upward() -> None:
    wrong = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}"
        for path in source_files()
        for line, module in project_imports(path)
        if not allowed(module_name(path), module)
    ]
    assert not wrong, "imports against the layout (README, Layout):\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("importer", "module", "ok"),
    [
        ("workflows.agent_run", "activities.flags", False),
        ("opsready.client", "workflows.agent_run", False),
        ("opsready.client", "workflows.contract", True),
        ("workers.app", "starters.cli", False),
        ("activities.config", "workers.app", False),
        ("starters.render", "workers.main", False),
    ],
)
def test_the_rule_itself_refuses_upward_imports(importer: str, module: str, ok: bool) -> None:
    assert allowed(importer, module) is ok
