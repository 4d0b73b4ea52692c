"""Keys of cached answers for read-only agents: the same question gets the same key.

Pure (hashlib and unicodedata only), so workflow code can compute a key before deciding
whether to call the model at all.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from workflows.payloads import ToolSpec
from workflows.types import RiskTier

_SPACE = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff]")


def normalise_input(text: str) -> str:
    """The text as a cache compares it: NFKC (full-width letters, ligatures), zero-width
    characters dropped, case folded, runs of whitespace made one space, ends trimmed."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).casefold()
    return _SPACE.sub(" ", text).strip()


def cache_key(agent: str, prompt_version: str, text: str, *, model: str | None = None) -> str:
    """A stable key for `text` asked of `agent` with `prompt_version` (and `model`, when
    answers should not be shared across models). Readable prefix, hashed input."""
    parts = [agent, prompt_version, model or "", normalise_input(text)]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"answer:{agent}:{prompt_version}:{digest}"


def is_cacheable(tools: Iterable[ToolSpec]) -> bool:
    """Only agents whose every tool is read-only may reuse answers: a cached answer must
    never stand in for a write it claims to have made."""
    return all(tool.risk_tier is RiskTier.READ for tool in tools)
