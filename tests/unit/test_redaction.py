"""Redaction (shared by logs, span attributes and metric labels) and the logging set-up."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from opsready.logs import configure_logging
from opsready.redaction import MASK, Redactor, redact_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key sk-proj-abcdefghijklmnopqrstuv here", "sk-proj-abcdefghijklmnopqrstuv"),
        ("Authorization: Bearer eyJhbGciOi.abcdefghijk.lmnopqrstu", "eyJhbGciOi"),
        ("my password is hunter2-secret", "hunter2-secret"),
        ("api_key=AbC123456789xyz", "AbC123456789xyz"),
        ("write to jane.doe@example.com today", "jane.doe@example.com"),
        ("call +1 415 555 0100 now", "415 555 0100"),
        ("card 4111 1111 1111 1111 please", "4111 1111 1111 1111"),
        ("card 4111-1111-1111-1111", "4111-1111-1111-1111"),
        ("aws AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
    ],
)
def test_secrets_and_personal_data_are_masked_in_text(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


def test_ordinary_text_ids_and_numbers_are_left_alone() -> None:
    text = "order A-1002 costs $129.00; run 01a210f5-374e-758e-8060-3d5d9dc05f7b at step 3"
    assert redact_text(text) == text


def test_sensitive_fields_are_masked_whole_and_config_adds_more() -> None:
    redactor = Redactor(extra_fields=["customer_name"])
    value = {
        "password": "x",
        "nested": {"api_key": "y", "customer_name": "Jane"},
        "items": [{"note": "mail me at a@b.io"}],
        "count": 3,
    }
    assert redactor.redact(value) == {
        "password": MASK,
        "nested": {"api_key": MASK, "customer_name": MASK},
        "items": [{"note": "mail me at [EMAIL]"}],
        "count": 3,
    }
    assert redactor.redact("Jane", "gen_ai.customer_name") == MASK


def test_stdlib_and_structlog_lines_are_json_redacted_and_carry_bound_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSREADY_REDACT_FIELDS", "ticket_owner")
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, level="INFO")
    try:
        with structlog.contextvars.bound_contextvars(run_id="r-1", agent="a"):
            structlog.get_logger("opsready.test").info("hello", email="x@y.com", ticket_owner="Bob")
            logging.getLogger("temporalio.worker").warning("token=%s", "abcdef123456")
    finally:
        configure_logging()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["hello", f"token={MASK}"]
    assert lines[0]["email"] == "[EMAIL]" and lines[0]["ticket_owner"] == MASK
    assert all(line["run_id"] == "r-1" and line["agent"] == "a" for line in lines)
    assert lines[1]["logger"] == "temporalio.worker"


def test_console_format_is_chosen_for_a_terminal_and_json_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opsready.logs import log_format

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("OPSREADY_LOG_FORMAT", raising=False)
    assert log_format(stream=Tty()) == "console"
    assert log_format(stream=io.StringIO()) == "json"
    monkeypatch.setenv("OPSREADY_LOG_FORMAT", "json")
    assert log_format(stream=Tty()) == "json"
