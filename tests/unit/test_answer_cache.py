"""Answer-cache keys: the same question (up to case, spacing, Unicode form) gets one key."""

from __future__ import annotations

from workflows.answer_cache import cache_key, is_cacheable, normalise_input
from workflows.payloads import ToolSpec
from workflows.types import RiskTier


def _tool(name: str, tier: RiskTier) -> ToolSpec:
    return ToolSpec(name=name, description="", parameters={}, risk_tier=tier)


def test_case_whitespace_and_unicode_form_do_not_change_the_key() -> None:
    base = cache_key("faq", "v1", "Where is my order?")
    variants = [
        "where is my order?",
        "  Where   is\tmy\norder?  ",
        "WHERE IS MY ORDER?",
        "\uff37\uff48\uff45\uff52\uff45 is my order\uff1f",  # full-width letters and "?"
        "Where is my\u200b order?",
    ]
    assert all(cache_key("faq", "v1", v) == base for v in variants)


def test_different_question_agent_prompt_or_model_gives_a_different_key() -> None:
    base = cache_key("faq", "v1", "Where is my order?")
    others = {
        cache_key("faq", "v1", "Where is my refund?"),
        cache_key("billing", "v1", "Where is my order?"),
        cache_key("faq", "v2", "Where is my order?"),
        cache_key("faq", "v1", "Where is my order?", model="openai/gpt-4o-mini"),
    }
    assert base not in others and len(others) == 4


def test_key_is_stable_and_readable() -> None:
    key = cache_key("faq", "v1", "hello")
    assert key == cache_key("faq", "v1", "hello")
    assert key.startswith("answer:faq:v1:") and len(key.rsplit(":", 1)[1]) == 32


def test_normalise_input_folds_case_and_spaces() -> None:
    assert normalise_input(" Straße\u00a0 \ufb01le ") == "strasse file"  # \ufb01: the fi ligature


def test_only_read_only_agents_are_cacheable() -> None:
    assert is_cacheable([_tool("search_kb", RiskTier.READ), _tool("lookup_order", RiskTier.READ)])
    assert not is_cacheable(
        [_tool("search_kb", RiskTier.READ), _tool("refund_order", RiskTier.WRITE)]
    )
