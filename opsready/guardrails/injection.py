"""A scored heuristic for prompt injection in a run's input.

Each signal is a pattern with a weight (how sure it alone makes us); the score of a text
is 1 - prod(1 - weight) over the distinct signals that fire, so one strong signal or
two weaker ones pass the default threshold of 0.6, and one weak signal alone does not:

- 0.9  instruction override ("ignore all previous instructions"), encoded injection
- 0.8  system-prompt exfiltration ("reveal your system prompt", "repeat everything above")
- 0.7  role-play override ("you are now DAN"), jailbreak terms, bypassing approval/safety
- 0.6  chat-role markers (`<|im_start|>system`, "SYSTEM:"), hidden characters, JSON tool calls
- 0.5  tool forcing ("call the refund_order tool"), "new instructions:", "from now on you"
- 0.35-0.45 weak hints: "without approval", encoded blobs, "decode this", "developer mode"

Text is normalised first (NFKC, lower case, zero-width and tag characters removed), so
full-width letters and invisible separators do not hide a phrase; base64 blobs and
Unicode tag characters are decoded and scored too. It is a heuristic: it catches the
common attacks cheaply and is tuned against benign support messages in the tests; a
model-based classifier can be added as another guardrail.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

DEFAULT_THRESHOLD = 0.6

_HIDDEN = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]")
_TAGS = re.compile("[\U000e0020-\U000e007e]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_W = r"(?:[\w'-]+\s+){0,3}?"  # up to three filler words


@dataclass(frozen=True)
class Signal:
    name: str
    weight: float
    pattern: re.Pattern[str]


def _signal(name: str, weight: float, pattern: str) -> Signal:
    return Signal(name, weight, re.compile(pattern, re.M))


SIGNALS: tuple[Signal, ...] = (
    _signal(
        "instruction_override",
        0.9,
        rf"\b(?:ignore|disregard|forget|override|bypass|drop)\s+{_W}(?:previous|prior|above|"
        r"earlier|preceding|all|any|your|system|original|initial|every|these|those)\s+"
        rf"{_W}(?:instructions?|prompts?|rules|directions|guidelines|guardrails|programming|"
        r"constraints|restrictions)\b",
    ),
    _signal(
        "forget_everything",
        0.8,
        r"\b(?:ignore|disregard|forget)\s+(?:everything|all|anything)\s+"
        r"(?:above|before|previously|you (?:were|have been) told)",
    ),
    _signal(
        "prompt_exfiltration",
        0.8,
        rf"\b(?:reveal|print|repeat|output|display|leak|dump|recite|echo|spell out|show)\s+{_W}"
        r"(?:your|the system|the initial|the original|the hidden|the above|all (?:of )?your)\s+"
        r"(?:[\w'-]+\s+)?(?:prompt|instructions|system message|configuration)\b",
    ),
    _signal(
        "repeat_above",
        0.8,
        r"\b(?:repeat|print|output|copy)\s+(?:everything|all|the (?:text|words|lines))\s+"
        r"(?:above|before|that came before)",
    ),
    _signal(
        "system_prompt_mention", 0.5, r"\b(?:system|initial|hidden|developer) (?:prompt|message)\b"
    ),
    _signal(
        "instructions_question",
        0.45,
        r"\b(?:what|tell me|show me)\b.{0,20}\byour (?:instructions|prompt|programming)\b",
    ),
    _signal(
        "role_override",
        0.7,
        r"\b(?:you are|you're|act as|pretend (?:to be|you are)|role-?play as|behave as|"
        r"simulate)\s+(?:now\s+)?(?:an?\s+|in\s+)?(?:dan\b|unrestricted|unfiltered|uncensored|"
        r"jailbroken|evil|admin(?:istrator)?\b|root\b|god mode|(?:an? )?ai without)",
    ),
    _signal(
        "jailbreak_terms", 0.7, r"\b(?:jailbreak|jailbroken|dan mode|do anything now|god mode)\b"
    ),
    _signal("you_are_now", 0.35, r"\byou are now\b"),
    _signal("developer_mode", 0.35, r"\b(?:developer|debug|maintenance) mode\b"),
    _signal(
        "bypass_controls",
        0.7,
        r"\b(?:bypass|skip|disable|turn off|circumvent|override|ignore)\s+(?:the\s+|your\s+|all\s+|"
        r"any\s+)?(?:approval|safety|guardrails?|filters?|moderation|restrictions|policy checks?)",
    ),
    _signal(
        "role_marker",
        0.6,
        r"(?:^\s*(?:system|assistant|developer)\s*:|<\|?(?:im_start|im_end|system|endoftext)\|?>"
        r"|\[/?(?:inst|system)\]|###\s*(?:system|instruction))",
    ),
    _signal(
        "new_instructions",
        0.5,
        r"\b(?:new|updated|real|actual|true)\s+(?:instructions?|system prompt|rules)\s*(?::|are\b)"
        r"|\bfrom now on,?\s+you\s+(?:will|must|are|should)\b",
    ),
    _signal(
        "tool_forcing",
        0.5,
        r"\b(?:call|invoke|run|execute|use|trigger)\s+(?:the\s+)?[a-z]+(?:_[a-z]+)+"
        r"(?:\s+(?:tool|function))?\b",
    ),
    _signal(
        "tool_call_json",
        0.6,
        r"\"(?:tool_calls?|function_call)\"|\"name\"\s*:\s*\"\w+\"\s*,\s*\"arguments\"",
    ),
    _signal(
        "without_approval",
        0.4,
        r"\bwithout\s+(?:any\s+)?(?:approval|verification|confirmation|asking|checks)\b",
    ),
    _signal(
        "no_restrictions",
        0.4,
        r"\b(?:no|without any|free (?:of|from))\s+(?:rules|restrictions|limits|limitations|filters|censorship)\b",
    ),
    _signal(
        "decode_and_follow",
        0.45,
        r"\b(?:decode|decrypt|deobfuscate)\b.{0,30}\b(?:base64|rot13|hex|cipher|encoded)\b"
        r"|\b(?:base64|rot13)\b.{0,40}\b(?:follow|execute|obey|do what)\b",
    ),
    _signal("hex_escapes", 0.4, r"(?:\\x[0-9a-f]{2}){8,}"),
)


@dataclass(frozen=True)
class InjectionScore:
    score: float
    signals: tuple[str, ...]  # names of the signals that fired, strongest first


def normalise(text: str) -> str:
    text = _HIDDEN.sub("", unicodedata.normalize("NFKC", text)).lower()
    return re.sub(r"[ \t]+", " ", text)


def score_injection(text: str, *, _depth: int = 0) -> InjectionScore:
    """How likely `text` tries to steer the agent away from its instructions (0..1)."""
    clean = normalise(text)
    weights = {s.name: s.weight for s in SIGNALS if s.pattern.search(clean)}
    if len(_HIDDEN.findall(text)) >= 3:
        weights["hidden_characters"] = 0.6
    if _depth == 0:
        for hidden in _decoded_payloads(text):
            inner = score_injection(hidden, _depth=1)
            if inner.score >= DEFAULT_THRESHOLD:
                weights["encoded_injection"] = 0.9
            elif hidden:
                weights.setdefault("encoded_payload", 0.35)
    remaining = 1.0
    for weight in weights.values():
        remaining *= 1 - weight
    names = tuple(sorted(weights, key=lambda n: (-weights[n], n)))
    return InjectionScore(round(1 - remaining, 4), names)


def _decoded_payloads(text: str) -> list[str]:
    """Readable text hidden in base64 blobs or Unicode tag characters."""
    found = []
    for match in _TAGS.finditer(text):
        found.append("".join(chr(ord(ch) - 0xE0000) for ch in match.group(0)))
    for match in _BASE64.finditer(text):
        blob = match.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if sum(ch.isprintable() or ch.isspace() for ch in decoded) >= 0.9 * len(decoded):
            found.append(decoded)
    return found
