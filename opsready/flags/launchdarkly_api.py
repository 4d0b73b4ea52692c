"""Flags in LaunchDarkly, changed through its REST API (v2): the `FlagStore` that `opsready
flags` and rollouts use when LAUNCHDARKLY_API_TOKEN is set.

Changes are semantic patches, which LaunchDarkly applies atomically and versions itself, so
two writers never lose an update and SDKs see every change. HTTP failures become one-line
errors; the token never appears in a message, a log line or a repr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from opsready.errors import (
    ConfigError,
    FlagChangeError,
    LaunchDarklyError,
    LaunchDarklyUnavailableError,
    OpsreadyError,
)
from opsready.flags._model import (
    TOTAL_WEIGHT,
    FlagInfo,
    flag_info,
    index_of,
    kill_switch_description,
    kill_switch_key,
    not_found,
    rollout_weights,
    show_value,
)
from opsready.settings import Settings

API_VERSION = "20240415"  # pinned, so LaunchDarkly's answers keep the shape parsed here
SEMANTIC_PATCH = "application/json; domain-model=launchdarkly.semanticpatch"
PAGE_SIZE = 100  # the largest page the flag list returns


class LaunchDarklyApi:
    """The flags of one LaunchDarkly project and environment. Explicit arguments override
    the settings; pass `http` to share a client (it is then not closed by `aclose`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        url: str | None = None,
        token: str | SecretStr | None = None,
        project: str | None = None,
        environment: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout_seconds: float = 15.0,
    ) -> None:
        settings = settings or Settings()
        secret = token if token is not None else settings.launchdarkly_api_token
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if not value:
            raise ConfigError("LAUNCHDARKLY_API_TOKEN is not set: the REST API needs a token")
        self._token: str = value
        self.url = (url or settings.launchdarkly_api_url).rstrip("/")
        self.project = project or settings.launchdarkly_project
        self.environment = environment or settings.launchdarkly_environment
        self._timeout = timeout_seconds
        self._http = http or httpx.AsyncClient(timeout=timeout_seconds)
        self._owns_http = http is None

    @property
    def location(self) -> str:
        return f"LaunchDarkly {self.project}/{self.environment}"

    def __repr__(self) -> str:
        return (
            f"LaunchDarklyApi(url={self.url!r}, project={self.project!r}, "
            f"environment={self.environment!r})"
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- reading ----------------------------------------------------------------------

    async def list_flags(self) -> list[FlagInfo]:
        return [self._info(flag) for flag in await self._list_raw()]

    async def get_flag(self, key: str) -> FlagInfo:
        return self._info(await self._require(key))

    # --- changing ---------------------------------------------------------------------

    async def set_value(self, key: str, value: Any) -> FlagInfo:
        return await self._serve(await self._require(key), value)

    async def set_rollout(self, key: str, percents: Mapping[int, float]) -> FlagInfo:
        flag = await self._require(key)
        ids = _variation_ids(flag)
        weights = rollout_weights(key, percents, _values(flag))
        current = self._info(flag)
        if _serves(current, weights):
            return current  # a retried step: no change, no entry in the change history
        fallthrough: dict[str, Any] = {"kind": "updateFallthroughVariationOrRollout"}
        if len(weights) == 1:
            fallthrough["variationId"] = ids[next(iter(weights))]
        else:
            fallthrough["rolloutWeights"] = {ids[i]: w for i, w in weights.items()}
        return await self._patch(key, [{"kind": "turnFlagOn"}, fallthrough])

    async def kill(
        self, *, agent: str | None = None, tool: str | None = None, reason: str | None = None
    ) -> FlagInfo:
        key = kill_switch_key(agent, tool)
        flag = await self._fetch(key) or await self._create_kill_switch(key)
        return await self._serve(flag, True, reason)

    async def unkill(
        self, *, agent: str | None = None, tool: str | None = None, reason: str | None = None
    ) -> FlagInfo:
        key = kill_switch_key(agent, tool)
        return await self._serve(await self._require(key), False, reason)

    async def _serve(self, flag: dict[str, Any], value: Any, reason: str | None = None) -> FlagInfo:
        index = index_of(_values(flag), value)
        if index is None:
            choices = ", ".join(show_value(v) for v in _values(flag))
            raise FlagChangeError(
                f"{flag['key']} has no variation {show_value(value)} in {self.location} "
                f"(it has {choices}); add the variation there first"
            )
        current = self._info(flag)
        if _serves(current, {index: TOTAL_WEIGHT}):
            return current  # already served: no change, no entry in the change history
        variation = {
            "kind": "updateFallthroughVariationOrRollout",
            "variationId": _variation_ids(flag)[index],
        }
        return await self._patch(flag["key"], [{"kind": "turnFlagOn"}, variation], reason)

    async def _patch(
        self, key: str, instructions: list[dict[str, Any]], reason: str | None = None
    ) -> FlagInfo:
        body: dict[str, Any] = {"environmentKey": self.environment, "instructions": instructions}
        if reason:
            body["comment"] = reason
        response = await self._send(
            "PATCH", self._flag_path(key), body=body, content_type=SEMANTIC_PATCH
        )
        flag = self._json(response, key)
        if self.environment not in (flag.get("environments") or {}):
            flag = await self._require(key)
        return self._info(flag)

    async def _create_kill_switch(self, key: str) -> dict[str, Any]:
        """A boolean flag serving false in every environment; `kill` then flips this one."""
        body = {
            "key": key,
            "name": key,
            "description": kill_switch_description(key),
            "temporary": False,
            "tags": ["opsready", "kill-switch"],
            "variations": [{"value": False, "name": "false"}, {"value": True, "name": "true"}],
            "defaults": {"onVariation": 0, "offVariation": 0},
        }
        response = await self._send("POST", f"/api/v2/flags/{quote(self.project)}", body=body)
        if response.status_code == 409:  # created meanwhile by another writer
            return await self._require(key)
        self._json(response, None)  # a 404 here means the project, not the flag
        return await self._require(key)

    # --- HTTP -------------------------------------------------------------------------

    def _flag_path(self, key: str) -> str:
        return f"/api/v2/flags/{quote(self.project)}/{quote(key)}"

    async def _list_raw(self) -> list[dict[str, Any]]:
        flags: list[dict[str, Any]] = []
        path: str | None = f"/api/v2/flags/{quote(self.project)}"
        params: dict[str, str] | None = {
            "env": self.environment,
            "summary": "0",
            "limit": str(PAGE_SIZE),
        }
        seen: set[str] = set()
        while path is not None and path not in seen:
            seen.add(path)
            page = self._json(await self._send("GET", path, params=params), None)
            items = page.get("items") or []
            flags.extend(items)
            following = ((page.get("_links") or {}).get("next") or {}).get("href")
            # Only paths on this host: the token must never travel to another one.
            is_next_page = isinstance(following, str) and following.startswith("/") and items
            path, params = (following, None) if is_next_page else (None, None)
        return flags

    async def _fetch(self, key: str) -> dict[str, Any] | None:
        """The flag with this environment's configuration, or None when there is no such flag."""
        response = await self._send("GET", self._flag_path(key), params={"env": self.environment})
        return None if response.status_code == 404 else self._json(response, key)

    async def _require(self, key: str) -> dict[str, Any]:
        flag = await self._fetch(key)
        if flag is None:
            try:
                known = [str(f.get("key")) for f in await self._list_raw()]
            except OpsreadyError:
                known = []  # the suggestion is a courtesy; the error is what matters
            raise not_found(key, known, self.location)
        return flag

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> httpx.Response:
        headers = {"Authorization": self._token, "LD-API-Version": API_VERSION}
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body).encode()
        try:
            return await self._http.request(
                method, self.url + path, params=params, content=content, headers=headers
            )
        except httpx.TimeoutException:
            raise LaunchDarklyUnavailableError(
                f"LaunchDarkly did not answer within {self._timeout:g}s ({self.url}); retry later"
            ) from None
        except httpx.HTTPError as err:
            raise LaunchDarklyUnavailableError(
                f"LaunchDarkly unreachable at {self.url} ({type(err).__name__}); retry later"
            ) from None

    def _json(self, response: httpx.Response, key: str | None) -> dict[str, Any]:
        if response.status_code >= 400:
            raise self._error(response, key)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise LaunchDarklyError(
                f"LaunchDarkly answered {response.status_code} with a body that is not a JSON object"
            )
        return body

    def _error(self, response: httpx.Response, key: str | None) -> OpsreadyError:
        status = response.status_code
        detail = self._detail(response)
        if status == 401:
            return LaunchDarklyError(
                "LaunchDarkly rejected the API token (401): check LAUNCHDARKLY_API_TOKEN"
            )
        if status == 403:
            return LaunchDarklyError(
                f"the LaunchDarkly API token may not do this in {self.location} (403): "
                f"it needs a role that can change flags there{detail}"
            )
        if status == 404:
            if key is not None:
                return not_found(key, [], self.location)
            return LaunchDarklyError(
                f"LaunchDarkly project {self.project!r} not found (404): check LAUNCHDARKLY_PROJECT"
            )
        if status == 429:
            after = response.headers.get("Retry-After")
            wait = f" in {after}s" if after and after.isdigit() else " later"
            return LaunchDarklyUnavailableError(
                f"LaunchDarkly rate limit reached (429): retry{wait}"
            )
        if status >= 500:
            return LaunchDarklyUnavailableError(f"LaunchDarkly failed ({status}): retry later")
        return LaunchDarklyError(f"LaunchDarkly refused the request ({status}){detail}")

    def _detail(self, response: httpx.Response) -> str:
        """`: <LaunchDarkly's message>` on one line, at most 200 characters, token masked."""
        try:
            message = response.json().get("message")
        except (ValueError, AttributeError):
            message = None
        if not isinstance(message, str) or not message.strip():
            return ""
        message = " ".join(message.replace(self._token, "[REDACTED]").split())
        return f": {message[:200]}"

    def _info(self, flag: dict[str, Any]) -> FlagInfo:
        key = str(flag.get("key"))
        env = (flag.get("environments") or {}).get(self.environment)
        if not isinstance(env, dict):
            raise LaunchDarklyError(
                f"flag {key} has no environment {self.environment!r} in project {self.project}: "
                "check LAUNCHDARKLY_ENVIRONMENT"
            )
        version = env.get("_version", env.get("version", flag.get("_version", 0)))
        return flag_info(
            key,
            description=flag.get("description") or "",
            variations=_values(flag),
            version=int(version),
            config=env,
        )


def _values(flag: Mapping[str, Any]) -> list[Any]:
    return [v.get("value") for v in flag.get("variations") or []]


def _variation_ids(flag: Mapping[str, Any]) -> list[str]:
    return [str(v.get("_id")) for v in flag.get("variations") or []]


def _serves(info: FlagInfo, weights: Mapping[int, int]) -> bool:
    """Whether the flag is on and its fallthrough already is exactly this split."""
    if not info.on:
        return False
    if len(weights) == 1:
        return info.fallthrough_variation == next(iter(weights)) and not info.rollout
    current = {i: round(pct * 1000) for i, pct in (info.rollout or {}).items() if pct > 0}
    return current == dict(weights)
