"""A real HTTP server speaking the part of LaunchDarkly's REST API (v2) opsready uses, on
loopback, for tests.

It keeps flags in memory in the API's representation (variations with `_id`, per-environment
`on`/`fallthrough`/`offVariation`/`version`), checks the `Authorization` token, lists flags a
page at a time, creates flags, and applies semantic patches (`turnFlagOn`, `turnFlagOff`,
`updateFallthroughVariationOrRollout`). Tests can script error answers (`fail`) and read
every request it received (`requests`).
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.loopback import LoopbackServer

SEMANTIC_PATCH = "domain-model=launchdarkly.semanticpatch"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query
    query: dict[str, str]
    headers: dict[str, str]  # names lowercased
    body: Any  # parsed JSON, or None


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.answer = _Answer(status, {"code": code, "message": message})


class FakeLaunchDarkly(LoopbackServer):
    """`with FakeLaunchDarkly() as fake:` then point `LaunchDarklyApi` at `fake.url`."""

    def __init__(
        self,
        token: str = "api-fake-token-0123456789",
        project: str = "default",
        environments: Sequence[str] = ("production", "test"),
    ) -> None:
        super().__init__()
        self.token = token
        self.project = project
        self.environments = list(environments)
        self.page_size = 100
        self._lock = threading.Lock()
        self._flags: dict[str, dict[str, Any]] = {}
        self._script: deque[_Answer] = deque()
        self._requests: list[RecordedRequest] = []

    # --- lifecycle --------------------------------------------------------------------

    def handler_class(self) -> type[_Handler]:
        return _Handler

    @property
    def url(self) -> str:
        return self.origin

    # --- state and scripting ----------------------------------------------------------

    def add_flag(
        self,
        key: str,
        values: Sequence[Any],
        *,
        on: bool = True,
        fallthrough: int = 0,
        off_variation: int = 0,
        description: str = "",
    ) -> None:
        """A flag serving `values[fallthrough]` in every environment."""
        flag = self._new_flag(key, description, [{"value": v} for v in values])
        for env in flag["environments"].values():
            env.update(on=on, fallthrough={"variation": fallthrough}, offVariation=off_variation)
        with self._lock:
            self._flags[key] = flag

    def flag(self, key: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._flags[key])

    def environment(self, key: str, env: str = "production") -> dict[str, Any]:
        return self.flag(key)["environments"][env]

    def fail(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        """The next request gets this answer (default body: LaunchDarkly's error shape)."""
        if body is None:
            body = {"code": "fake_error", "message": f"fake error {status}"}
        with self._lock:
            self._script.append(_Answer(status, body, dict(headers or {})))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    # --- the API ----------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> _Answer:
        with self._lock:
            self._requests.append(request)
            if self._script:
                return self._script.popleft()
            if request.headers.get("authorization") != self.token:
                raise ApiError(401, "unauthorized", "Invalid access token")
            parts = request.path.strip("/").split("/")
            if parts[:3] != ["api", "v2", "flags"] or len(parts) not in (4, 5):
                raise ApiError(404, "not_found", f"Unknown resource {request.path}")
            if parts[3] != self.project:
                raise ApiError(404, "not_found", "Unknown project")
            if len(parts) == 4:
                if request.method == "GET":
                    return self._list(request.query)
                if request.method == "POST":
                    return self._create(request.body)
            else:
                key = parts[4]
                if request.method == "GET":
                    return _Answer(200, self._view(self._get(key), request.query.get("env")))
                if request.method == "PATCH":
                    return self._patch(key, request)
            raise ApiError(405, "method_not_allowed", f"{request.method} {request.path}")

    def _get(self, key: str) -> dict[str, Any]:
        if key not in self._flags:
            raise ApiError(404, "not_found", "Unknown resource")
        return self._flags[key]

    def _view(self, flag: dict[str, Any], env: str | None) -> dict[str, Any]:
        view = copy.deepcopy(flag)
        if env is not None:
            view["environments"] = {k: v for k, v in view["environments"].items() if k == env}
        return view

    def _list(self, query: Mapping[str, str]) -> _Answer:
        limit = min(int(query.get("limit", "20")), self.page_size)
        offset = int(query.get("offset", "0"))
        keys = sorted(self._flags)
        page = keys[offset : offset + limit]
        body: dict[str, Any] = {
            "items": [self._view(self._flags[k], query.get("env")) for k in page],
            "totalCount": len(keys),
            "_links": {},
        }
        if offset + limit < len(keys):
            env = f"env={query['env']}&" if "env" in query else ""
            body["_links"]["next"] = {
                "href": f"/api/v2/flags/{self.project}?{env}limit={limit}&offset={offset + limit}",
                "type": "application/json",
            }
        return _Answer(200, body)

    def _create(self, body: Any) -> _Answer:
        if not isinstance(body, dict) or not body.get("key") or not body.get("name"):
            raise ApiError(400, "invalid_request", "key and name are required")
        if body["key"] in self._flags:
            raise ApiError(409, "conflict", "A flag with this key already exists")
        variations = body.get("variations") or [{"value": True}, {"value": False}]
        flag = self._new_flag(body["key"], body.get("description", ""), variations)
        defaults = body.get("defaults") or {"onVariation": 0, "offVariation": 1}
        for env in flag["environments"].values():
            env["fallthrough"] = {"variation": defaults["onVariation"]}
            env["offVariation"] = defaults["offVariation"]
        self._flags[body["key"]] = flag
        return _Answer(201, copy.deepcopy(flag))

    def _patch(self, key: str, request: RecordedRequest) -> _Answer:
        flag = self._get(key)
        body = request.body
        if SEMANTIC_PATCH not in request.headers.get("content-type", ""):
            raise ApiError(400, "invalid_request", "expected a JSON patch (not supported here)")
        if not isinstance(body, dict) or body.get("environmentKey") not in flag["environments"]:
            raise ApiError(400, "invalid_request", "environmentKey is missing or unknown")
        env = copy.deepcopy(flag["environments"][body["environmentKey"]])
        ids = {v["_id"]: i for i, v in enumerate(flag["variations"])}
        for instruction in body.get("instructions") or []:
            _apply(env, instruction, ids)
        flag["environments"][body["environmentKey"]] = env
        env["version"] += 1
        flag["_version"] += 1
        return _Answer(200, copy.deepcopy(flag))

    def _new_flag(
        self, key: str, description: str, variations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        return {
            "key": key,
            "name": key,
            "description": description,
            "kind": "boolean"
            if [v["value"] for v in variations] in ([False, True], [True, False])
            else "multivariate",
            "_version": 1,
            "variations": [{"_id": str(uuid.uuid4()), **dict(v)} for v in variations],
            "environments": {
                env: {
                    "on": False,
                    "fallthrough": {"variation": 0},
                    "offVariation": 0,
                    "targets": [],
                    "contextTargets": [],
                    "rules": [],
                    "version": 1,
                }
                for env in self.environments
            },
        }


def _apply(env: dict[str, Any], instruction: Mapping[str, Any], ids: Mapping[str, int]) -> None:
    kind = instruction.get("kind")
    if kind == "turnFlagOn":
        env["on"] = True
    elif kind == "turnFlagOff":
        env["on"] = False
    elif kind == "updateFallthroughVariationOrRollout":
        if "variationId" in instruction:
            if instruction["variationId"] not in ids:
                raise ApiError(400, "invalid_request", "unknown variationId")
            env["fallthrough"] = {"variation": ids[instruction["variationId"]]}
            return
        weights = instruction.get("rolloutWeights") or {}
        if any(i not in ids for i in weights) or sum(weights.values()) != 100_000:
            raise ApiError(400, "invalid_request", "rolloutWeights must sum to 100000")
        env["fallthrough"] = {
            "rollout": {
                "variations": [
                    {"variation": ids[i], "weight": w}
                    for i, w in sorted(weights.items(), key=lambda item: ids[item[0]])
                ]
            }
        }
    else:
        raise ApiError(400, "invalid_request", f"unsupported instruction kind {kind!r}")


class _Handler(BaseHTTPRequestHandler):
    owner: FakeLaunchDarkly

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method=self.command,
            path=unquote(split.path),
            query={k: v[-1] for k, v in parse_qs(split.query).items()},
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            answer = self.owner.handle(request)
        except ApiError as err:
            answer = err.answer
        payload = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep test output quiet
