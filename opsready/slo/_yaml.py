"""A small YAML writer for the Prometheus files we generate (mappings, lists, scalars,
multi-line strings as literal blocks): enough for rules, not a general serializer."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_:./-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def dump(value: Mapping[str, Any]) -> str:
    return "\n".join(_lines(value, 0)) + "\n"


def _lines(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(value, Mapping):
        lines: list[str] = []
        for key, item in value.items():
            if isinstance(item, Mapping | list) and item:
                lines += [f"{pad}{key}:", *_lines(item, indent + 1)]
            elif isinstance(item, str) and _is_block(item):
                lines.append(f"{pad}{key}: |-")
                lines += [f"{pad}  {line}" if line else "" for line in item.strip().splitlines()]
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, Mapping) and item:
                block = _lines(item, indent + 1)
                lines += [f"{pad}- {block[0].lstrip()}", *block[1:]]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return lines
    return [f"{pad}{_scalar(value)}"]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[]"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED and not text.endswith(":"):
        return text
    if '"' in text and "'" not in text and text.isprintable():
        return f"'{text}'"  # PromQL one-liners read best unescaped
    # A JSON string is a valid YAML double-quoted scalar (same escapes).
    return json.dumps(text)


def _is_block(text: str) -> bool:
    """Multi-line text (PromQL) reads best as a literal block."""
    return "\n" in text and text == text.strip()
