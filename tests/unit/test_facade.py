"""The public facade: service code imports everything from `opsready`, and the README
shows exactly what `opsready.__all__` exports."""

from __future__ import annotations

import ast

import opsready
from opsready.settings import PROJECT_ROOT


def _readme_import() -> list[str]:
    """The names of the README's `from opsready import (...)` block."""
    text = (PROJECT_ROOT / "README.md").read_text()
    start = text.index("from opsready import (")
    block = text[start : text.index(")", start) + 1]
    [statement] = ast.parse(block).body
    assert isinstance(statement, ast.ImportFrom)
    return [alias.name for alias in statement.names]


def test_service_code_imports_the_client_the_types_the_plugin_and_the_errors() -> None:
    from opsready import OpsreadyClient, OpsreadyError, OpsreadyPlugin, RunStatus

    assert OpsreadyClient.__module__ == "opsready.client"
    assert RunStatus("awaiting_approval") is RunStatus.AWAITING_APPROVAL
    assert OpsreadyPlugin().name() == "opsready"
    assert issubclass(opsready.RunNotFoundError, OpsreadyError)


def test_every_exported_name_exists_once() -> None:
    assert len(set(opsready.__all__)) == len(opsready.__all__)
    missing = [name for name in opsready.__all__ if not hasattr(opsready, name)]
    assert not missing


def test_the_readme_shows_what_the_facade_exports() -> None:
    shown = _readme_import()
    assert len(shown) == len(set(shown))
    assert set(shown) == set(opsready.__all__)


def test_the_whole_error_tree_is_exported() -> None:
    from opsready import errors

    tree = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.OpsreadyError)
    }
    assert tree <= set(opsready.__all__)
