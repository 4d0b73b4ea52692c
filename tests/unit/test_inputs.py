"""Lenient decoding of what AgentRun receives (workflows.inputs): anything decodes, and a bad
payload is a one-line problem the run records."""

from __future__ import annotations

from workflows.inputs import decode, decode_request, text_field
from workflows.types import AgentRunRequest, HaltRequest


def test_a_good_request_decodes_whole() -> None:
    request, problem = decode_request([{"agent": "support-triage", "input": "hi", "user_id": "u1"}])
    assert problem is None and request == AgentRunRequest(
        agent="support-triage", input="hi", user_id="u1"
    )


def test_a_request_over_the_size_limit_is_one_line_without_the_input() -> None:
    request, problem = decode_request([{"agent": "support-triage", "input": "x" * 30_000}])
    assert problem == "invalid request: input: String should have at most 20000 characters"
    assert request.agent == "support-triage"  # kept for the run's name in the UI list


def test_non_objects_and_wrong_argument_counts_are_named() -> None:
    assert decode_request(['"refund me"'])[1] == (
        "invalid request: expected a JSON object (AgentRunRequest), got a string"
    )
    assert decode_request([])[1] == "invalid request: expected one AgentRunRequest payload, got 0"
    request, problem = decode_request([None, 5])
    assert problem == "invalid request: expected one AgentRunRequest payload, got 2"
    assert request.agent == "?"


def test_signal_payloads_decode_or_say_why() -> None:
    assert decode(HaltRequest, [{"reason": "r", "by": "me"}]) == (
        HaltRequest(reason="r", by="me"),
        None,
    )
    assert decode(HaltRequest, [None]) == (None, "expected a JSON object (HaltRequest), got null")
    halt, problem = decode(HaltRequest, [{"reason": 5, "by": []}])
    assert halt is None and problem == "reason: Input should be a valid string (and 1 more)"


def test_a_usable_field_of_a_malformed_payload_is_kept() -> None:
    assert text_field([{"reason": 5, "by": "oncall"}], "by") == "oncall"
    assert text_field([{"by": []}], "by") is None
    assert text_field(["stop"], "by") is None
