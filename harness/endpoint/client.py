"""The one HTTP client for model endpoints: URLs, keys, retries, deadlines, streaming, ``<think>``.

Every request the harness sends to a model server goes through ``EndpointClient``, so the
rules below hold everywhere (a second copy once scored the same reply two ways):

* Callers speak OpenAI chat-completions shapes; ``provider="anthropic"`` is translated at
  this edge by ``harness.endpoint.anthropic`` and the reply translated back.
* ``chat`` never raises for a failed request: the failure is data (``ChatOutcome.failure``),
  never fake model text. The one exception is the spend guard's ``SpendLimitReached``: a run
  past its budget must stop, not record failures. ``probe``, ``stream_chat`` and ``get``
  raise ``EndpointError``.
* A deadline (a ``time.monotonic()`` instant) bounds a whole request, retries included.
* Only transport failures, 429 and 5xx are retried, a bounded number of times; a 200 never.
* Messages name the redacted URL; the API key appears in no message, record or repr.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from harness.endpoint.anthropic import from_anthropic_response, to_anthropic_request
from harness.endpoint.replies import (
    EVIDENCE_CHARS,
    ChatReply,
    Provider,
    RetryRecord,
    StreamAccumulator,
    StreamResult,
    Usage,
    as_object,
    is_int,
    parse_completion,
    positive_int,
    strip_think,
)

# Replies are typed in replies.py; callers may import them from here, the one client's module.
__all__ = ["ChatOutcome", "ChatReply", "EndpointClient", "FailureKind", "Provider", "RetryPolicy", "RetryRecord",
           "ServerInfo", "StreamResult", "ThinkingControl", "Usage", "normalize_base_url", "read_api_key",
           "redact_url", "strip_think", "thinking_control_for"]
from harness.endpoint.spend import SpendGuard
from harness.endpoint.sse import iter_sse_events, iter_sse_lines
from harness.errors import EndpointError

FailureKind = Literal["timeout", "http_error", "server_error", "endpoint_unreachable", "bad_reply"]
ThinkingControl = Literal["chat_template_kwargs", "reasoning_effort", "anthropic", "none"]

_CHAT_PATH: dict[str, str] = {"openai-compatible": "/v1/chat/completions", "anthropic": "/v1/messages"}
_SAMPLING_KEYS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "presence_penalty", "seed")
# Failures worth another try: the request may never have reached the model, or the reply was lost.
_RETRYABLE_TRANSPORT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
_USERINFO = re.compile(r"//[^/@\s]+@")


class RetryPolicy(BaseModel):
    """How many times, and how long in total, a failed request may be retried."""

    model_config = ConfigDict(frozen=True)

    max_retries: int = 2
    max_total_wait_s: float = 30
    backoff_s: float = 1.0


class ChatOutcome(BaseModel):
    """What one chat request came to: a reply, or a failure kind with one line of evidence."""

    reply: ChatReply | None
    failure: FailureKind | None
    error: str
    latency_ms: float  # the whole call, retries and their waits included
    retries: list[RetryRecord]


class ServerInfo(BaseModel):
    """What one probe learned about an endpoint. ``base_url`` is real: print ``redact_url`` of it."""

    base_url: str = Field(repr=False)  # may hold user:password@; kept out of reprs and tracebacks
    provider: Provider
    model_ids: list[str]
    model: str
    is_llama_cpp: bool
    slots: int | None
    n_ctx_per_slot: int | None
    chat_template: str
    thinking_control: ThinkingControl
    default_sampling: dict[str, Any] | None
    health_status: int | None


def normalize_base_url(url: str) -> str:
    """Reduce an endpoint URL to its server root; the client adds ``/v1/...`` itself."""
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise EndpointError(f"{redact_url(url)!r}: not an http(s) URL (bad port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"{redact_url(url)!r}: not an http(s) URL")
    if parts.query or parts.fragment:
        raise EndpointError(f"{redact_url(url)!r}: a base URL takes no query or fragment")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def redact_url(url: str) -> str:
    """Hide ``user:password@`` in a URL (or in any text holding one) before it is shown."""
    return _USERINFO.sub("//***@", url)


def thinking_control_for(chat_template: str) -> ThinkingControl:
    """Which request field switches thinking for a model, judged from its chat template."""
    if "enable_thinking" in chat_template:
        return "chat_template_kwargs"
    if "reasoning_effort" in chat_template:
        return "reasoning_effort"
    return "none"


def read_api_key(env_name: str | None, environ: Mapping[str, str]) -> str | None:
    """The key held in ``environ[env_name]``; None when no variable is named."""
    if env_name is None:
        return None
    value = (environ.get(env_name) or "").strip()
    if not value:
        raise EndpointError(
            f"API key variable {env_name} is not set (the profile's API_KEY_ENV / --api-key-env names it)"
        )
    return value


class _BearerAuth(httpx.Auth):
    """The key as a bearer token. As client auth it also keeps httpx from replacing it with
    Basic auth built from ``user:password@`` in the URL (used when no key is set)."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request


class _Failed(Exception):
    """A request that ended without a usable response; carried out of the retry loop."""

    def __init__(self, kind: FailureKind, error: str) -> None:
        super().__init__(error)
        self.kind: FailureKind = kind
        self.error = error


class _DeadlinePassed(Exception):
    """The caller's deadline passed while we were sending or reading."""


class EndpointClient:
    """Talks to one model endpoint; see the module docstring for the rules it keeps."""

    def __init__(
        self,
        base_url: str,
        *,
        provider: Provider = "openai-compatible",
        model_id: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 120,
        connect_timeout_s: float = 10,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so one shared default is safe
        max_connections: int = 8,
        anthropic_version: str = "2023-06-01",
        spend: SpendGuard | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.display_url = redact_url(self.base_url)
        self.provider: Provider = provider
        self.model_id = model_id
        self.api_key_env = api_key_env  # only to name the variable in 401/403 messages
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retry = retry
        self.spend = spend  # refuses requests past MAX_TOTAL_TOKENS / MAX_COST_USD (SpendLimitReached)
        self.info: ServerInfo | None = None
        url_password = urlsplit(self.base_url).password
        # Texts to blank out of every message: servers echo credentials they refuse.
        self._secrets = [secret for secret in (api_key, url_password, unquote(url_password or "")) if secret]
        headers: dict[str, str] = {}
        auth: httpx.Auth | None = None
        if provider == "anthropic":
            headers["anthropic-version"] = anthropic_version
            if api_key:
                headers["x-api-key"] = api_key
        elif api_key:
            auth = _BearerAuth(api_key)
        # trust_env=False: proxies and netrc from the environment are the caller's to decide.
        self._http = httpx.Client(
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=False,
        )

    def __repr__(self) -> str:
        return f"EndpointClient({self.display_url!r}, provider={self.provider!r}, model_id={self.model_id!r})"

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # --- probing -------------------------------------------------------------------------

    def get(self, path: str, *, timeout_s: float | None = None) -> httpx.Response:
        """GET a server-root path (``/health``, ``/props``) with auth; raises only on transport failure."""
        limit_s = timeout_s if timeout_s is not None else self.timeout_s
        try:
            return self._http.get(
                self.base_url + path, timeout=httpx.Timeout(limit_s, connect=min(limit_s, self.connect_timeout_s))
            )
        except httpx.HTTPError as exc:
            raise EndpointError(f"{self.display_url}{path}: unreachable ({self._describe(exc)})") from exc

    def post(self, path: str, *, json: Any = None, content: bytes | None = None,
             headers: dict[str, str] | None = None, timeout_s: float | None = None) -> httpx.Response:
        """POST to a server-root path (``/tokenize``; a deliberately malformed body) with auth, no retries.

        Raises only on transport failure: the status and body are the caller's evidence.
        """
        limit_s = timeout_s if timeout_s is not None else self.timeout_s
        try:
            return self._http.post(
                self.base_url + path, json=json, content=content, headers=headers,
                timeout=httpx.Timeout(limit_s, connect=min(limit_s, self.connect_timeout_s)),
            )
        except httpx.HTTPError as exc:
            raise EndpointError(f"{self.display_url}{path}: unreachable ({self._describe(exc)})") from exc

    @contextmanager
    def raw(self, path: str, *, json: Any = None, content: bytes | None = None,
            headers: dict[str, str] | None = None, timeout_s: float | None = None) -> Iterator[httpx.Response]:
        """A POST streamed as it comes, for probes that must see the wire: a malformed body's answer, a
        stream hung up mid-way. No retries, and transport failures stay httpx exceptions, because
        telling a hang from a refusal from a dropped connection is the caller's finding."""
        limit_s = timeout_s if timeout_s is not None else self.timeout_s
        with self._http.stream("POST", self.base_url + path, json=json, content=content, headers=headers,
                               timeout=httpx.Timeout(limit_s, connect=min(limit_s, self.connect_timeout_s))) as reply:
            yield reply

    def probe(self) -> ServerInfo:
        """Learn the models, slots, template and health of the endpoint; cached on ``self.info``."""
        url = f"{self.display_url}/v1/models"
        response = self.get("/v1/models")
        if response.status_code != 200:
            raise EndpointError(self._status_error(url, response.status_code, response.content))
        model_ids = _model_ids(response)
        if not model_ids:
            raise EndpointError(f"{url}: lists no model: {self._evidence(response.content)}")
        props: dict[str, Any] = {}
        health_status: int | None = None
        if self.provider == "openai-compatible":
            props = self._props()
            try:
                health_status = self.get("/health", timeout_s=self.connect_timeout_s).status_code
            except EndpointError:
                health_status = None
        settings = as_object(props.get("default_generation_settings"))
        params = as_object(settings.get("params")) or settings  # older llama.cpp has no "params"
        sampling = {key: params[key] for key in _SAMPLING_KEYS if key in params}
        total_slots = props.get("total_slots")
        chat_template = props.get("chat_template")
        chat_template = chat_template if isinstance(chat_template, str) else ""
        self.info = ServerInfo(
            base_url=self.base_url,
            provider=self.provider,
            model_ids=model_ids,
            model=self.model_id or model_ids[0],
            is_llama_cpp=is_int(total_slots),
            slots=positive_int(total_slots),
            n_ctx_per_slot=positive_int(settings.get("n_ctx")),
            chat_template=chat_template,
            thinking_control="anthropic" if self.provider == "anthropic" else thinking_control_for(chat_template),
            default_sampling=sampling or None,
            health_status=health_status,
        )
        return self.info

    def _props(self) -> dict[str, Any]:
        """llama.cpp's /props, or {} from any server that lacks it or answers nonsense."""
        try:
            response = self.get("/props", timeout_s=self.connect_timeout_s)
            body = response.json() if response.status_code == 200 else {}
        except (EndpointError, ValueError):
            return {}
        return body if isinstance(body, dict) else {}

    # --- chat ----------------------------------------------------------------------------

    def chat(self, payload: dict[str, Any], *, deadline: float | None = None) -> ChatOutcome:
        """Send one non-streaming chat request; failures come back as data, never raised."""
        if self.spend is not None:
            self.spend.check()  # the one exception chat raises: the run must stop, not record a failure
        call_started = time.monotonic()
        deadline = call_started + self.timeout_s if deadline is None else deadline
        path, body = self._chat_request(payload, stream=False)
        retries: list[RetryRecord] = []

        def outcome(reply: ChatReply | None, failure: FailureKind | None, error: str) -> ChatOutcome:
            elapsed_ms = (time.monotonic() - call_started) * 1000
            return ChatOutcome(reply=reply, failure=failure, error=error, latency_ms=elapsed_ms, retries=retries)

        try:
            response, content, attempt_started = self._post(path, body, deadline, retries, read_body=True)
        except _Failed as failed:
            return outcome(None, failed.kind, failed.error)
        try:
            wire = json.loads(content)
            completion = from_anthropic_response(wire) if self.provider == "anthropic" else wire
            reply = parse_completion(completion, wire, latency_ms=(time.monotonic() - attempt_started) * 1000)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            error = f"{self.display_url}{path}: HTTP {response.status_code} but not a chat completion ({reason})"
            return outcome(None, "bad_reply", f"{error}: {self._evidence(content)}")
        if self.spend is not None:
            self.spend.add(reply.usage.prompt_tokens, reply.usage.completion_tokens)
        return outcome(reply, None, "")

    def _chat_request(self, payload: dict[str, Any], *, stream: bool) -> tuple[str, dict[str, Any]]:
        """The path and wire body for a chat payload (OpenAI shape in, provider's shape out)."""
        body = dict(payload)
        model = body.get("model") or self.model_id or (self.info.model if self.info else None)
        if model:
            body["model"] = model
        body.pop("stream_options", None)
        if stream:
            body["stream"] = True
            if self.provider == "openai-compatible":
                body["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        else:
            body.pop("stream", None)
        if self.provider == "anthropic":
            body = to_anthropic_request(body)
        return _CHAT_PATH[self.provider], body

    def _post(
        self, path: str, body: dict[str, Any], deadline: float, retries: list[RetryRecord], *, read_body: bool
    ) -> tuple[httpx.Response, bytes, float]:
        """POST under the retry policy: a 2xx response (open when not ``read_body``), its body, its start.

        Raises ``_Failed`` when no usable response came back within the policy and the deadline.
        """
        url = self.display_url + path
        waited_s = 0.0
        attempt = 0
        while True:
            attempt += 1
            attempt_started = time.monotonic()
            retry_after_s: float | None = None
            try:
                response = self._send(path, body, deadline)
                if response.is_success and not read_body:
                    return response, b"", attempt_started
                try:
                    content = b"".join(self._chunks_until(response, deadline))
                finally:
                    response.close()
            except _DeadlinePassed:
                raise _Failed("timeout", f"{url}: no complete reply before the deadline (attempt {attempt})") from None
            except httpx.TimeoutException as exc:
                if not isinstance(exc, httpx.ConnectTimeout):
                    raise _Failed("timeout", f"{url}: {self._describe(exc)} (attempt {attempt})") from None
                kind: FailureKind = "endpoint_unreachable"
                error = f"{url}: unreachable ({self._describe(exc)})"
            except _RETRYABLE_TRANSPORT_ERRORS as exc:
                kind, error = "endpoint_unreachable", f"{url}: unreachable ({self._describe(exc)})"
            except httpx.HTTPError as exc:
                raise _Failed("endpoint_unreachable", f"{url}: {self._describe(exc)}") from None
            else:
                status = response.status_code
                if response.is_success:
                    return response, content, attempt_started
                kind = "server_error" if status >= 500 else "http_error"
                error = self._status_error(url, status, content)
                if status != 429 and status < 500:
                    raise _Failed(kind, error)
                retry_after_s = _retry_after_s(response.headers.get("retry-after"))
            wait_s = self._retry_wait_s(attempt, retry_after_s, waited_s, deadline)
            if wait_s is None:
                raise _Failed(kind, error + (f" (after {len(retries)} retries)" if retries else ""))
            retries.append(RetryRecord(attempt=attempt, reason=error, wait_s=wait_s))
            waited_s += wait_s
            time.sleep(wait_s)

    def _send(self, path: str, body: dict[str, Any], deadline: float) -> httpx.Response:
        """Send a POST and return once headers arrive; the body is left to read."""
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise _DeadlinePassed
        # Reads get the time left: a server that goes silent is cut off at the deadline.
        timeout = httpx.Timeout(remaining_s, connect=min(self.connect_timeout_s, remaining_s))
        request = self._http.build_request("POST", self.base_url + path, json=body, timeout=timeout)
        return self._http.send(request, stream=True)

    @staticmethod
    def _chunks_until(response: httpx.Response, deadline: float) -> Iterator[bytes]:
        """The body's chunks, giving up once the deadline passes (a server may drip bytes)."""
        for chunk in response.iter_bytes():
            yield chunk
            if time.monotonic() > deadline:
                raise _DeadlinePassed

    def _retry_wait_s(
        self, attempt: int, retry_after_s: float | None, waited_s: float, deadline: float
    ) -> float | None:
        """Seconds to sleep before the next attempt, or None when the policy or deadline says stop."""
        if attempt > self.retry.max_retries:
            return None
        wanted_s = retry_after_s if retry_after_s is not None else self.retry.backoff_s * attempt
        budget_left_s = self.retry.max_total_wait_s - waited_s
        if wanted_s > 0 and budget_left_s <= 0:
            return None
        wait_s = max(0.0, min(wanted_s, budget_left_s))
        if time.monotonic() + wait_s >= deadline:
            return None  # the next attempt would start with no time left
        return wait_s

    # --- streaming -----------------------------------------------------------------------

    def stream_chat(
        self,
        payload: dict[str, Any],
        *,
        clock: Callable[[], float] = time.perf_counter,
        deadline: float | None = None,
    ) -> StreamResult:
        """Stream one completion and time it; raises EndpointError on any failure.

        429/5xx/transport failures are retried like ``chat`` until the first byte of a 200.
        """
        if self.spend is not None:
            self.spend.check()
        deadline = time.monotonic() + self.timeout_s if deadline is None else deadline
        path, body = self._chat_request(payload, stream=True)
        url = self.display_url + path
        retries: list[RetryRecord] = []
        started_s = clock()
        try:
            response, _, _ = self._post(path, body, deadline, retries, read_body=False)
        except _Failed as failed:
            raise EndpointError(failed.error) from None
        stream = StreamAccumulator(self.provider, url, started_s, clock, self._scrub)
        try:
            for event in iter_sse_events(iter_sse_lines(self._chunks_until(response, deadline))):
                if stream.feed(event):
                    break
        except (_DeadlinePassed, httpx.TimeoutException):
            raise EndpointError(f"{url}: stream did not finish before the deadline") from None
        except httpx.HTTPError as exc:
            raise EndpointError(f"{url}: stream broke ({self._describe(exc)})") from None
        finally:
            response.close()
        result = stream.result(retries)
        if self.spend is not None:
            self.spend.add(result.usage.prompt_tokens, result.usage.completion_tokens)
        return result

    # --- messages ------------------------------------------------------------------------

    def _status_error(self, url: str, status: int, content: bytes) -> str:
        """One line for a non-2xx answer; 401/403 say which variable should hold the key."""
        evidence = self._evidence(content)
        suffix = f" (body: {evidence})" if evidence else ""
        if status in (401, 403):
            reason = "unauthorized" if status == 401 else "forbidden"
            if self.api_key_env:
                return f"{url}: HTTP {status} {reason}: set the key in ${self.api_key_env} (API_KEY_ENV){suffix}"
            return (
                f"{url}: HTTP {status}: the endpoint wants an API key; "
                f"name its variable with API_KEY_ENV or --api-key-env{suffix}"
            )
        return f"{url}: HTTP {status}: {evidence or '(empty body)'}"

    def _evidence(self, content: bytes) -> str:
        """The first characters of a body, on one line, safe to print."""
        text = " ".join(content[: EVIDENCE_CHARS * 4].decode("utf-8", "replace").split())
        return self._scrub(text[:EVIDENCE_CHARS])

    def _describe(self, exc: BaseException) -> str:
        return self._scrub(f"{type(exc).__name__}: {exc}".splitlines()[0])

    def _scrub(self, text: str) -> str:
        """Remove the key and URL credentials from text that may hold them."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_url(text)


def _model_ids(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return []
    return [entry["id"] for entry in data if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None when absent or odd."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
