"""A real HTTP server speaking OpenAI's chat-completions protocol, on loopback, for tests.

Tests script its answers in order (`reply`, `fail`, `delay`, `raw`); once the script is
used up it answers a plain default reply. Every request is recorded with its arrival time,
so tests can count attempts and measure the gaps Temporal's retries leave between them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer

CHAT_PATH = "/v1/chat/completions"
DEFAULT_CONTENT = "Hello from the fake model."


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names lowercased
    body: Any  # parsed JSON, or None when the body was not JSON
    at: float  # time.monotonic() on arrival


@dataclass
class _Step:
    """One scripted answer. A dict body without "model" gets the request's model."""

    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    content_type: str = "application/json"


def completion(
    content: str | None = None,
    tool_calls: Sequence[tuple[str, dict[str, Any] | str]] | None = None,
    usage: tuple[int, int] | None = (10, 5),
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A chat-completion body; tool call arguments given as a string are sent verbatim."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for i, (name, args) in enumerate(tool_calls, start=1)
        ]
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
    }
    if usage is not None:
        prompt, completion_tokens = usage
        body["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }
    return body


class FakeOpenAI(LoopbackServer):
    """`with FakeOpenAI() as fake:` then point a provider at `fake.base_url`."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._script: deque[_Step] = deque()
        self._requests: list[RecordedRequest] = []

    # --- lifecycle --------------------------------------------------------------------

    def handler_class(self) -> type[_Handler]:
        return _Handler

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    # --- scripting --------------------------------------------------------------------

    def reply(
        self,
        content: str | None = None,
        tool_calls: Sequence[tuple[str, dict[str, Any] | str]] | None = None,
        usage: tuple[int, int] | None = (10, 5),
        finish_reason: str | None = None,
    ) -> None:
        self._push(_Step(body=completion(content, tool_calls, usage, finish_reason)))

    def fail(
        self,
        status: int,
        body: dict[str, Any] | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """An error answer; the default body is OpenAI's `{"error": {"message": ...}}`."""
        if body is None:
            body = {"error": {"message": f"fake error {status}", "type": "fake_error"}}
        self._push(_Step(status=status, body=body, headers=dict(headers or {})))

    def delay(self, seconds: float, content: str = DEFAULT_CONTENT) -> None:
        """A plain reply that arrives only after `seconds`."""
        self._push(_Step(body=completion(content), delay_seconds=seconds))

    def raw(self, status: int, text: str, content_type: str = "application/json") -> None:
        """Any body, sent as is (for malformed answers)."""
        self._push(_Step(status=status, body=text, content_type=content_type))

    def clear(self) -> None:
        """Drop the scripted answers not yet used: from now on, the plain default reply."""
        with self._lock:
            self._script.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def _push(self, step: _Step) -> None:
        with self._lock:
            self._script.append(step)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next(self) -> _Step:
        with self._lock:
            return (
                self._script.popleft() if self._script else _Step(body=completion(DEFAULT_CONTENT))
            )


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAI

    def do_POST(self) -> None:
        body = self._record()
        if self.path != CHAT_PATH:
            self._send(_not_found(self.path))
            return
        step = self.owner._next()
        if step.delay_seconds and self.owner._stopping.wait(step.delay_seconds):
            return
        if isinstance(step.body, dict) and "choices" in step.body and isinstance(body, dict):
            step.body.setdefault("model", body.get("model"))
        self._send(step)

    def do_GET(self) -> None:
        self._record()
        self._send(_not_found(self.path))

    def _record(self) -> Any:
        """Record the request; return its JSON body (None when absent or not JSON)."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.owner._record(RecordedRequest(self.path, headers, body, time.monotonic()))
        return body

    def _send(self, step: _Step) -> None:
        text = step.body if isinstance(step.body, str) else json.dumps(step.body)
        payload = text.encode()
        try:
            self.send_response(step.status)
            self.send_header("Content-Type", step.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in step.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing left to answer

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep test output quiet


def _not_found(path: str) -> _Step:
    return _Step(status=404, body={"error": {"message": f"no route {path}"}})
