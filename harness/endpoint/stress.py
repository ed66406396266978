"""Stress an endpoint at its limits: a needle-in-a-haystack grid and boundary probes.

* **Needle grid** — depths × fills of the per-slot context. The haystack is filler prose we
  generate from small word lists with a seeded RNG; a needle sentence with a value drawn from
  the same seed sits at the given depth (measured in tokens); the question comes last. A cell
  passes when the reply holds the value (case/space-normalised). Fill is measured against the
  per-slot context minus the answer budget. A missed needle is a *capability* result (a weak
  model), an unanswered request is a *server* failure.
* **Tokens** are counted with the server's ``POST /tokenize`` (llama.cpp) when it answers, else
  from a calibration of ``usage.prompt_tokens``, else estimated at 4 characters a token (said
  in the notes). The chat template's overhead is measured once from ``usage.prompt_tokens``.
* **Boundary probes** (server checks): exact fill answered; one token over refused with a 4xx
  or truncated with ``finish_reason`` "length"; a prompt longer than the context refused;
  slots+1 concurrent long requests all answered; abandoned streams free their slots; malformed
  requests answered with a 4xx; healthy at the end. A server that stops answering ends the run,
  and the result says during which probe.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field
from tabulate import tabulate

from harness.endpoint.client import EndpointClient, ServerInfo
from harness.endpoint.measured import Measured
from harness.endpoint.sse import iter_sse_events, iter_sse_lines
from harness.endpoint.verify import Check, failure_count, format_checks
from harness.errors import EndpointError
from harness.files import write_text_atomic

CHARS_PER_TOKEN_ESTIMATE = 4
INTRO = "Read the text below carefully. A question about it follows the text."
QUESTION = "What is the secret passphrase for the vault? Reply with the passphrase only."
BOUNDARY_TAIL = "Summarize the text above in one sentence."
PAD_UNIT = " ok"  # one token in the vocabularies we meet; the fitting loop checks with the server's count
QUICK_DEPTHS_PCT = [25, 75]
QUICK_FILLS_PCT = [25, 75]
EXCERPT_CHARS = 120
LOG_TAIL_LINES = 40

# Small word lists: enough variety that the filler reads as prose, not one word repeated.
_ADJECTIVES = ("quiet", "narrow", "golden", "busy", "ancient", "gentle", "crowded", "distant", "humble", "bright",
               "muddy", "patient", "silver", "windy", "careful", "early", "heavy", "modest", "curious", "steady")
_NOUNS = ("farmer", "baker", "teacher", "sailor", "merchant", "painter", "student", "miller", "weaver", "doctor",
          "shepherd", "carpenter", "gardener", "clerk", "fisher", "potter", "singer", "traveler", "builder", "cook")
_THINGS = ("basket", "ladder", "lantern", "wagon", "bridge", "garden", "window", "letter", "kettle", "fence",
           "boat", "map", "barrel", "blanket", "chair", "notebook", "orchard", "mill", "well", "cart")
_PLACES = ("the market square", "the river bank", "the old harbor", "the village hall", "the hill road",
           "the north field", "the town library", "the stone chapel", "the forest edge", "the corner shop")
_VERBS = ("carried", "repaired", "painted", "visited", "measured", "cleaned", "counted", "described", "moved",
          "watched", "sold", "borrowed", "mended", "sketched", "loaded")
_TIMES = ("every morning", "after the rain", "before noon", "on most evenings", "during the long winter",
          "in early spring", "at the end of each week", "when the bells rang", "late in the autumn", "at dawn")
_TEMPLATES = (
    "The {adj} {noun} {verb} the {thing} near {place} {time}.",
    "{Time}, a {adj} {noun} {verb} a {thing} at {place}.",
    "Nobody at {place} remembered why the {noun} {verb} the {adj} {thing}.",
    "People said the {thing} by {place} was the most {adj} one they had seen.",
    "A {noun} and a {noun2} {verb} the {thing} together {time}.",
    "The {thing} stayed {adj} while the {noun} waited at {place}.",
    "{Time}, the {noun} wrote that the {thing} looked {adj} again.",
    "Near {place}, a {adj} {noun2} {verb} an old {thing} for the {noun}.",
)
# The needle's words come from lists the filler never uses, so the value cannot be guessed from it.
_NEEDLE_COLOURS = ("amber", "cobalt", "crimson", "indigo", "jade", "ochre", "saffron", "scarlet", "teal", "violet")
_NEEDLE_ANIMALS = ("badger", "falcon", "heron", "lynx", "marmot", "otter", "panther", "raven", "walrus", "yak")
FILLER_DESCRIPTION = (f"seeded sentences (random.Random(seed)) from {len(_TEMPLATES)} templates and small word lists "
                      "of adjectives, people, things, places, verbs and times; no external text")

Count = Callable[[str], int]
TokenMethod = Literal["tokenize", "usage", "estimate"]


# ---------------------------------------------------------------- result models

class StressSettings(BaseModel):
    """Everything that shapes the run; recorded with it."""

    depths_pct: list[int] = Field(default_factory=lambda: [25, 50, 90], description="needle depths, % of haystack")
    fills_pct: list[int] = Field(default_factory=lambda: [25, 50, 90],
                                 description="prompt sizes, % of (per-slot context - max_tokens)")
    seed: int
    max_tokens: int = Field(default=32, ge=1, description="answer budget of every grid request")
    timeout_s: float = Field(default=120, gt=0, description="seconds one request may take")
    ctx_per_slot: int | None = Field(default=None, description="per-slot context given by the caller (else /props)")
    slots: int | None = Field(default=None, description="server slots given by the caller (else /props)")


class Needle(BaseModel):
    """The hidden fact and how the haystack around it was made."""

    seed: int
    value: str = Field(description="what a passing reply must contain (case/space-normalised)")
    sentence: str
    filler: str = Field(description="how the filler text was generated")
    token_count_method: TokenMethod = Field(description="tokenize: the server's /tokenize; usage: calibrated from "
                                                        "usage.prompt_tokens; estimate: 4 characters a token")
    template_overhead_tokens: int | None = Field(description="prompt tokens of the question frame with no haystack")


class NeedleCell(BaseModel):
    """One grid cell: a needle at one depth in a prompt of one fill."""

    depth_pct: int
    fill_pct: int
    target_prompt_tokens: int
    prompt_tokens: int | None = Field(description="usage.prompt_tokens as the server counted them")
    needle_at_pct: float = Field(description="where the needle landed, % of the haystack's tokens")
    passed: bool
    latency_s: float | None
    reply_excerpt: str
    error: str | None = Field(default=None, description="the request failed: the failure kind and evidence")


class StressResult(Measured):
    """What `stress --save-json` writes: the grid, the probes, and whether the server survived."""

    kind: Literal["stress"] = "stress"
    schema_version: Literal[1] = 1
    settings: StressSettings
    n_ctx_per_slot: int
    n_ctx_source: str
    slots: int
    slots_source: str
    needle: Needle
    grid: list[NeedleCell]
    probes: list[Check] = Field(description="server checks gate the exit code; capability checks do not")
    concurrent_latencies_s: list[float] = Field(default_factory=list,
                                                description="slots+1 simultaneous long requests, in start order")
    idle_ttft_s: float | None = Field(default=None, description="TTFT of a short request on an idle server")
    ttft_after_cancel_s: float | None = Field(default=None, description="TTFT right after abandoning long streams")
    server_died: str | None = Field(default=None, description="'server died during <probe>: <state>' or None")
    log_tail: list[str] = Field(default_factory=list, description="the server container's last log lines, if it died")
    duration_s: float
    notes: list[str] = Field(default_factory=list)

    @property
    def server_failures(self) -> int:
        return failure_count(self.probes)

    @property
    def exit_code(self) -> int:
        """Failed server checks, plus one when the server died."""
        return self.server_failures + (1 if self.server_died else 0)


# ---------------------------------------------------------------- pure pieces

def filler_sentences(seed: int, count: int) -> list[str]:
    """The first ``count`` filler sentences of a seed's stream (a longer list extends a shorter one)."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        template = rng.choice(_TEMPLATES)
        time_phrase = rng.choice(_TIMES)
        sentences.append(template.format(
            adj=rng.choice(_ADJECTIVES), noun=rng.choice(_NOUNS), noun2=rng.choice(_NOUNS), thing=rng.choice(_THINGS),
            place=rng.choice(_PLACES), verb=rng.choice(_VERBS), time=time_phrase,
            Time=time_phrase[0].upper() + time_phrase[1:]))
    return sentences


def make_needle(seed: int) -> tuple[str, str]:
    """(value, sentence) of the seed's needle: a colour, an animal and a four-digit number."""
    rng = random.Random(f"needle-{seed}")
    value = f"{rng.choice(_NEEDLE_COLOURS)} {rng.choice(_NEEDLE_ANIMALS)} {rng.randrange(1000, 10000)}"
    return value, f"The secret passphrase for the vault is {value}."


def normalise(text: str) -> str:
    """Lower-case letters and digits only: how replies and the needle value are compared."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def needle_found(reply: str, value: str) -> bool:
    return normalise(value) in normalise(reply)


def join(sentences: Sequence[str]) -> str:
    return " ".join(sentences)


def _last_fitting(n: int, fits: Callable[[int], bool]) -> int:
    """The largest k in [0, n] with fits(k), for a fits that is true up to some k and false after."""
    low, high = 0, n
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def build_filler(seed: int, target_tokens: int, count: Count) -> list[str]:
    """The longest prefix of the seed's sentences whose text counts at most ``target_tokens``."""
    if target_tokens <= 0:
        return []
    n = max(8, target_tokens // 8)
    pool = filler_sentences(seed, n)
    while count(join(pool)) <= target_tokens:
        n *= 2
        pool = filler_sentences(seed, n)
    return pool[:_last_fitting(len(pool), lambda k: count(join(pool[:k])) <= target_tokens)]


def place_needle(sentences: Sequence[str], needle: str, depth_pct: float, count: Count) -> tuple[str, float]:
    """The haystack with the needle at the sentence boundary nearest ``depth_pct`` of its tokens,
    and where it landed (% of the filler's tokens before it)."""
    total = count(join(sentences))
    if not sentences or total <= 0:
        return needle, 0.0
    want = depth_pct / 100 * total
    below = _last_fitting(len(sentences), lambda k: count(join(sentences[:k])) <= want)
    options = [k for k in (below, below + 1) if k <= len(sentences)]
    k = min(options, key=lambda k: abs(count(join(sentences[:k])) - want))
    text = join([*sentences[:k], needle, *sentences[k:]])
    return text, 100 * count(join(sentences[:k])) / total


def needle_prompt(haystack: str) -> str:
    """The user message of a grid cell: intro, haystack, then the question last."""
    return f"{INTRO}\n\n{haystack}\n\n{QUESTION}"


def estimate_tokens(text: str) -> int:
    """The fallback count when the server tells us nothing: 4 characters a token."""
    return max(1, round(len(text) / CHARS_PER_TOKEN_ESTIMATE))


def _short(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ---------------------------------------------------------------- HTTP side

class _ServerGone(Exception):
    """The server stopped answering during a probe."""


@dataclass
class _RawAnswer:
    """One raw request's outcome: a status and body, or what went wrong on the wire."""

    status: int | None
    body: str
    failure: Literal["hang", "dropped", "refused"] | None = None

    def describe(self) -> str:
        if self.failure is not None:
            return {"hang": "no answer before the timeout (hang)", "dropped": "connection dropped without an answer",
                    "refused": "connection refused"}[self.failure] + (f" ({self.body})" if self.body else "")
        return f"HTTP {self.status}: {_short(self.body, 100) or '(empty body)'}"

    @property
    def error_body(self) -> bool:
        """A JSON body that names an error (OpenAI: {"error": ...}; some servers: {"detail"/"message": ...})."""
        try:
            body = json.loads(self.body)
        except ValueError:
            return False
        return isinstance(body, dict) and any(key in body for key in ("error", "detail", "message"))


def _raw_post(client: EndpointClient, path: str, content: bytes, timeout_s: float) -> _RawAnswer:
    """POST bytes as they are (malformed bodies included); a hang, a refusal and a drop are told apart."""
    try:
        with client.raw(path, content=content, headers={"Content-Type": "application/json"},
                        timeout_s=timeout_s) as response:
            body = response.read().decode(errors="replace")
    except httpx.TimeoutException as exc:
        if isinstance(exc, httpx.ConnectTimeout):
            return _RawAnswer(None, "connect timeout", "refused")
        return _RawAnswer(None, "", "hang")
    except httpx.ConnectError as exc:
        return _RawAnswer(None, type(exc).__name__, "refused")
    except httpx.HTTPError as exc:
        return _RawAnswer(None, type(exc).__name__, "dropped")
    return _RawAnswer(response.status_code, body)


def _chat_body(model: str, content: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
            "temperature": 0, **extra}


class _Stress:
    """One endpoint under stress: the request plumbing and the sizes every probe shares."""

    def __init__(self, client: EndpointClient, info: ServerInfo, settings: StressSettings, n_ctx: int, slots: int,
                 log: Callable[[str], None]) -> None:
        self.client, self.info, self.settings = client, info, settings
        self.model, self.n_ctx, self.slots, self.log = info.model, n_ctx, slots, log
        self.health_path = "/health" if info.health_status == 200 else "/v1/models"
        self.extra: dict[str, Any] = {"ignore_eos": True} if info.is_llama_cpp else {}
        self.notes: list[str] = []
        self.latencies_s: list[float] = []
        self.idle_ttft_s: float | None = None
        self.ttft_after_cancel_s: float | None = None
        self.method: TokenMethod = "estimate"
        self._tokens_per_char = 1 / CHARS_PER_TOKEN_ESTIMATE
        self._cache: dict[str, int] = {}

    # ----- token counting

    def choose_counter(self) -> None:
        """/tokenize when the server answers it sensibly, else a usage calibration, else the estimate."""
        probe_text = join(filler_sentences(self.settings.seed, 4))
        answer = _raw_post(self.client, "/tokenize", json.dumps({"content": probe_text}).encode(), 10)
        if answer.status == 200:
            try:
                tokens = json.loads(answer.body).get("tokens")
            except (ValueError, AttributeError):
                tokens = None
            if isinstance(tokens, list) and 0 < len(tokens) < len(probe_text):
                self.method = "tokenize"
                return
        small, large = filler_sentences(self.settings.seed, 2), filler_sentences(self.settings.seed, 40)
        counts = [self.prompt_tokens(join(part)) for part in (small, large)]
        if counts[0] is not None and counts[1] is not None and counts[1] > counts[0]:
            self._tokens_per_char = (counts[1] - counts[0]) / (len(join(large)) - len(join(small)))
            self.method = "usage"
            self.notes.append("no /tokenize: token counts calibrated from usage.prompt_tokens (sizes are approximate)")
            return
        self.notes.append("no /tokenize and no usage.prompt_tokens: tokens estimated at 4 characters each")

    def count(self, text: str) -> int:
        """Tokens in ``text`` by the chosen method (cached: the searches ask for the same prefixes)."""
        if text not in self._cache:
            if self.method == "tokenize":
                body = json.dumps({"content": text, "add_special": False}).encode()
                answer = _raw_post(self.client, "/tokenize", body, self.settings.timeout_s)
                if answer.status != 200:
                    raise EndpointError(f"{self.client.display_url}/tokenize: {answer.describe()}")
                self._cache[text] = len(json.loads(answer.body)["tokens"])
            else:
                self._cache[text] = round(len(text) * self._tokens_per_char)
        return self._cache[text]

    def prompt_tokens(self, content: str) -> int | None:
        """usage.prompt_tokens of a one-token request with this user message (None when not told)."""
        outcome = self.client.chat(_chat_body(self.model, content, 1))
        self.raise_if_unreachable(outcome.failure, outcome.error)
        return outcome.reply.usage.prompt_tokens if outcome.reply else None

    def raise_if_unreachable(self, failure: str | None, error: str) -> None:
        if failure == "endpoint_unreachable" and self.alive() is not None:
            raise _ServerGone(error)

    def alive(self) -> str | None:
        """None while the server answers its health path; else what went wrong."""
        for attempt in range(3):
            try:
                status = self.client.get(self.health_path, timeout_s=5).status_code
            except EndpointError as exc:
                problem = str(exc)
            else:
                if status < 500:
                    return None
                problem = f"{self.health_path} answered {status}"
            if attempt < 2:
                time.sleep(0.5)
        return problem

    # ----- sized prompts

    def fit_prompt(self, target_tokens: int, tail: str = BOUNDARY_TAIL) -> tuple[str, int] | None:
        """A user message of exactly ``target_tokens`` prompt tokens as the server counts them, or None.

        Filler a little short of the target, then single-token pads, corrected from usage.prompt_tokens.
        """
        frame = self.prompt_tokens(tail)
        if frame is None:
            return None
        sentences = build_filler(self.settings.seed + 1, target_tokens - frame - 8, self.count)
        pad = 0
        for _ in range(8):
            content = f"{join(sentences)}{PAD_UNIT * pad}\n\n{tail}"
            measured = self.prompt_tokens(content)
            if measured is None:
                return None
            if measured == target_tokens:
                return content, measured
            pad += target_tokens - measured
            while pad < 0 and sentences:
                pad += self.count(" " + sentences.pop())
        return None

    def stream_ttft(self) -> float | None:
        payload = _chat_body(self.model, f"[{secrets.token_hex(4)}] Reply with one word: hello.", 4)
        return self.client.stream_chat(payload).ttft_s


# ---------------------------------------------------------------- the grid

def _run_grid(stress: _Stress, needle_value: str, needle_sentence: str, overhead: int) -> list[NeedleCell]:
    settings = stress.settings
    usable = stress.n_ctx - settings.max_tokens
    cells = []
    for fill in settings.fills_pct:
        target = round(fill / 100 * usable)
        needle_tokens = stress.count(" " + needle_sentence)
        filler = build_filler(settings.seed, target - overhead - needle_tokens, stress.count)
        for depth in settings.depths_pct:
            haystack, landed = place_needle(filler, needle_sentence, depth, stress.count)
            outcome = stress.client.chat(_chat_body(stress.model, needle_prompt(haystack), settings.max_tokens))
            stress.raise_if_unreachable(outcome.failure, outcome.error)
            reply = outcome.reply
            content = reply.content if reply else ""
            cell = NeedleCell(depth_pct=depth, fill_pct=fill, target_prompt_tokens=target,
                              prompt_tokens=reply.usage.prompt_tokens if reply else None,
                              needle_at_pct=round(landed, 1),
                              passed=reply is not None and needle_found(content, needle_value),
                              latency_s=round(outcome.latency_ms / 1000, 3) if reply else None,
                              reply_excerpt=_short(content),
                              error=None if reply else f"{outcome.failure}: {outcome.error}")
            stress.log(f"needle depth {depth}% fill {fill}% ({cell.prompt_tokens or target} tokens): "
                       f"{'PASS' if cell.passed else 'miss' if reply else 'ERROR'}")
            cells.append(cell)
    return cells


def _grid_checks(cells: list[NeedleCell]) -> list[Check]:
    failed = [c for c in cells if c.error]
    answered = Check.make("needle-grid requests answered", "server", not failed,
                          f"{len(cells) - len(failed)}/{len(cells)} answered"
                          + (f"; first failure (depth {failed[0].depth_pct}%, fill {failed[0].fill_pct}%): "
                             f"{failed[0].error}" if failed else ""))
    found = [c for c in cells if c.passed]
    missed = [f"{c.depth_pct}%/{c.fill_pct}%" for c in cells if not c.passed and not c.error]
    retrieval = Check.make("needle retrieved (depth/fill)", "capability", len(found) == len(cells) - len(failed),
                           f"{len(found)}/{len(cells)} found" + (f"; missed at {', '.join(missed)}" if missed else ""))
    return [answered, retrieval]


# ---------------------------------------------------------------- boundary probes

def _probe_exact_fill(stress: _Stress) -> list[Check]:
    """Prompt + max_tokens exactly the per-slot context: answered."""
    name = "exact fill answered (prompt + max_tokens = context)"
    budget = stress.settings.max_tokens
    fitted = stress.fit_prompt(stress.n_ctx - budget)
    if fitted is None:
        stress.notes.append("exact fill and one-over skipped: could not size a prompt to the token "
                            "(the server reports no usage.prompt_tokens, or its counts moved)")
        return []
    content, prompt = fitted
    outcome = stress.client.chat(_chat_body(stress.model, content, budget, **stress.extra))
    stress.raise_if_unreachable(outcome.failure, outcome.error)
    if outcome.reply is None:
        return [Check.make(name, "server", False, f"prompt {prompt} + max_tokens {budget} = {stress.n_ctx}: "
                                                  f"{outcome.failure}: {outcome.error}")]
    reply = outcome.reply
    return [Check.make(name, "server", True,
                       f"HTTP 200, prompt {reply.usage.prompt_tokens} + max_tokens {budget} = {stress.n_ctx}; "
                       f"{reply.usage.completion_tokens} tokens, finish_reason {reply.finish_reason}")]


def _probe_one_over(stress: _Stress) -> list[Check]:
    """One token past the context: refused with a 4xx and an error body, or truncated with "length"."""
    name = "one token over refused (4xx) or truncated (length)"
    budget = stress.settings.max_tokens
    fitted = stress.fit_prompt(stress.n_ctx - budget + 1)
    if fitted is None:
        return []
    content, prompt = fitted
    answer = _raw_post(stress.client, "/v1/chat/completions",
                       json.dumps(_chat_body(stress.model, content, budget, **stress.extra)).encode(),
                       stress.settings.timeout_s)
    head = f"prompt {prompt} + max_tokens {budget} = {stress.n_ctx + 1}"
    passed, verdict = _boundary_verdict(answer, prompt, budget, stress.n_ctx)
    health = stress.alive()
    if health is not None:
        passed, verdict = False, f"{verdict}; then {health}"
    return [Check.make(name, "server", passed, f"{head}: {verdict}")]


def _boundary_verdict(answer: _RawAnswer, prompt: int, budget: int, n_ctx: int) -> tuple[bool, str]:
    if answer.status is not None and 400 <= answer.status < 500:
        ok = answer.error_body
        return ok, f"refused, {answer.describe()}" + ("" if ok else " (no error body)")
    if answer.status != 200:
        return False, answer.describe()
    try:
        body = json.loads(answer.body)
        finish = body["choices"][0].get("finish_reason")
        completion = (body.get("usage") or {}).get("completion_tokens")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return False, f"HTTP 200 but not a chat completion: {_short(answer.body, 80)}"
    if finish == "length":
        return True, f"truncated: HTTP 200, {completion} tokens, finish_reason length"
    if isinstance(completion, int) and prompt + completion <= n_ctx:
        return True, f"HTTP 200, {completion} tokens, finish_reason {finish} (ended before the boundary)"
    return False, f"HTTP 200, {completion} tokens, finish_reason {finish}: past the context without a refusal"


def _probe_over_long(stress: _Stress) -> list[Check]:
    """A prompt longer than the whole per-slot context: refused with a 4xx, never silently cut."""
    name = "prompt longer than the context refused (4xx)"
    filler = build_filler(stress.settings.seed + 2, stress.n_ctx + 64, stress.count)
    content = f"{join(filler)}\n\n{BOUNDARY_TAIL}"
    answer = _raw_post(stress.client, "/v1/chat/completions",
                       json.dumps(_chat_body(stress.model, content, stress.settings.max_tokens)).encode(),
                       stress.settings.timeout_s)
    passed = answer.status is not None and 400 <= answer.status < 500 and answer.error_body
    detail = f"~{stress.count(content)} tokens > {stress.n_ctx}: {answer.describe()}"
    if answer.status == 200:
        detail += " (answered: the prompt was cut or the context is larger than reported)"
    return [Check.make(name, "server", passed, detail)]


def _probe_concurrent(stress: _Stress) -> list[Check]:
    """slots+1 long requests at once: every one answered (the extra one queues)."""
    k = stress.slots + 1
    half = (stress.n_ctx - stress.settings.max_tokens) // 2
    filler = join(build_filler(stress.settings.seed + 3, half - 48, stress.count))
    barrier = threading.Barrier(k)

    def one(i: int) -> tuple[float, str | None]:
        body = _chat_body(stress.model, f"[request {i} {secrets.token_hex(4)}] {filler}\n\n{BOUNDARY_TAIL}",
                          stress.settings.max_tokens)
        barrier.wait(timeout=stress.settings.timeout_s)
        outcome = stress.client.chat(body)
        return outcome.latency_ms / 1000, None if outcome.reply else f"{outcome.failure}: {outcome.error}"

    with ThreadPoolExecutor(max_workers=k) as pool:
        results = list(pool.map(one, range(k)))
    latencies = stress.latencies_s = [round(seconds, 3) for seconds, _ in results]
    errors = [error for _, error in results if error]
    detail = (f"{k} requests of ~{half} tokens on {stress.slots} slot(s): {k - len(errors)}/{k} answered; "
              f"latencies {', '.join(f'{s:.2f}' for s in latencies)} s")
    if errors:
        detail += f"; {errors[0]}"
    return [Check.make(f"slots+1 ({k}) concurrent long requests answered", "server", not errors, detail)]


def _abandon_streams(stress: _Stress, streams: int, chunks_wanted: int = 3) -> list[int]:
    """Open ``streams`` long generations, read a few content chunks of each, then hang up on all."""
    budget = max(stress.settings.max_tokens, min(stress.n_ctx - 96, 4096))
    read: list[int] = []
    try:
        _hang_up_after(stress, streams, chunks_wanted, budget, read)
    except httpx.HTTPError as exc:
        raise EndpointError(f"{stress.client.display_url}/v1/chat/completions: long stream broke "
                            f"({type(exc).__name__}: {exc})") from None
    return read  # every connection was closed mid-stream


def _hang_up_after(stress: _Stress, streams: int, chunks_wanted: int, budget: int, read: list[int]) -> None:
    with ExitStack() as stack:
        for i in range(streams):
            body = {**_chat_body(stress.model, f"[{i} {secrets.token_hex(4)}] Write a very long story about a "
                                               "lighthouse keeper, describing every day of the year.", budget,
                                 **stress.extra), "stream": True}
            response = stack.enter_context(stress.client.raw("/v1/chat/completions", json=body,
                                                             timeout_s=stress.settings.timeout_s))
            if response.status_code != 200:
                raise EndpointError(f"{stress.client.display_url}/v1/chat/completions: long stream refused, "
                                    f"HTTP {response.status_code}: {_short(response.read().decode(errors='replace'))}")
            seen = 0
            for event in iter_sse_events(iter_sse_lines(response.iter_bytes())):
                if event.data.strip() == "[DONE]":
                    break
                try:
                    delta = (json.loads(event.data).get("choices") or [{}])[0].get("delta") or {}
                except (ValueError, AttributeError, IndexError):
                    continue
                if delta.get("content") or delta.get("reasoning_content"):
                    seen += 1
                    if seen >= chunks_wanted:
                        break
            read.append(seen)


def _slots_busy(stress: _Stress) -> tuple[int | None, str]:
    """Slots still processing by /slots (or /metrics); (None, why) when neither tells."""
    try:
        response = stress.client.get("/slots", timeout_s=5)
        if response.status_code == 200 and isinstance(slots := response.json(), list):
            return sum(1 for slot in slots if isinstance(slot, dict) and slot.get("is_processing")), "/slots"
        response = stress.client.get("/metrics", timeout_s=5)
        if response.status_code == 200:
            found = re.search(r"^llamacpp:requests_processing\s+([0-9.]+)", response.text, re.MULTILINE)
            if found:
                return int(float(found.group(1))), "/metrics requests_processing"
    except (EndpointError, ValueError):
        pass
    return None, "neither /slots nor /metrics tells"


def _probe_cancel(stress: _Stress) -> list[Check]:
    """Abandon a long stream on every slot; a new request must start as fast as on an idle server,
    and no slot may still be processing."""
    name = "cancelled streams free their slots"
    stress.stream_ttft()  # warm: the first request may load or compile something
    idle = stress.idle_ttft_s = stress.stream_ttft()
    read = _abandon_streams(stress, stress.slots)
    hung_up = time.monotonic()
    try:
        after = stress.ttft_after_cancel_s = stress.stream_ttft()
    except EndpointError as exc:
        return [Check.make(name, "server", False, f"request after the cancel failed: {exc}")]
    busy, source = _slots_busy(stress)
    while busy and time.monotonic() - hung_up < 5:
        time.sleep(0.2)
        busy, source = _slots_busy(stress)
    limit = None if idle is None else max(3 * idle, idle + 1.5)
    fast = after is not None and (limit is None or after <= limit)
    detail = (f"{len(read)} stream(s) hung up after {', '.join(map(str, read))} chunks; next TTFT "
              f"{_seconds(after)} vs idle {_seconds(idle)}" + (f" (limit {limit:.2f} s)" if limit else "")
              + f"; {source}: " + ("n/a" if busy is None else f"{busy} slot(s) still processing"))
    return [Check.make(name, "server", fast and not busy, detail)]


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


@dataclass(frozen=True)
class _Malformed:
    name: str
    body: bytes
    may_accept: str | None = None  # why a 2xx is a legitimate answer too (said in the detail), else None


def _malformed_cases(model: str) -> list[_Malformed]:
    user = [{"role": "user", "content": "Reply with the single word OK."}]

    def body(**fields: Any) -> bytes:
        return json.dumps(fields).encode()

    return [
        _Malformed("invalid JSON body", b'{"model": "' + model.encode() + b'", "messages": [{"role": "user", "con'),
        _Malformed("messages is a string", body(model=model, messages="hello", max_tokens=8)),
        _Malformed("max_tokens is a string", body(model=model, messages=user, max_tokens="ten")),
        _Malformed("temperature is a string", body(model=model, messages=user, max_tokens=8, temperature="hot")),
        _Malformed("messages missing", body(model=model, max_tokens=8)),
        _Malformed("unknown model", body(model=f"no-such-model-{secrets.token_hex(3)}", messages=user, max_tokens=8),
                   may_accept="a one-model server (llama.cpp) answers whatever model is named"),
    ]


def _error_body(body: str) -> bool:
    """Whether a body is a JSON error object (``{"error": ...}``), i.e. the server answered on purpose."""
    try:
        return isinstance(data := json.loads(body), dict) and "error" in data
    except ValueError:
        return False


def _probe_malformed(stress: _Stress) -> list[Check]:
    """Each malformed request answered with an error (a 4xx, or a 5xx with a JSON error body, said so);
    the server healthy after each."""
    checks = []
    timeout_s = min(stress.settings.timeout_s, 30)
    for case in _malformed_cases(stress.model):
        answer = _raw_post(stress.client, "/v1/chat/completions", case.body, timeout_s)
        passed = answer.status is not None and 400 <= answer.status < 500
        health = stress.alive()
        detail = answer.describe()
        if answer.status is not None and answer.status >= 500 and _error_body(answer.body):
            # answered with an error and still healthy: what the issue asks; the wrong class is said, not failed
            passed = True
            detail = f"answered {answer.status} where a 4xx is due (the server maps this client error to a " \
                     f"server error; it did not crash): {detail}"
            stress.notes.append(f"malformed request ({case.name}) answered HTTP {answer.status}, not a 4xx")
        if answer.status is not None and answer.status < 300:
            passed = case.may_accept is not None
            detail = f"accepted, not refused ({case.may_accept or 'a client error answered as a success'}): {detail}"
        if health is not None:
            passed, detail = False, f"{detail}; then {health}"
        name = f"malformed request refused with an error{' or answered' if case.may_accept else ''}: {case.name}"
        checks.append(Check.make(name, "server", passed, detail))
        if health is not None:
            raise _ServerGone(health)
    return checks


def _probe_health(stress: _Stress) -> list[Check]:
    """After everything: the health path answers 200 and a normal chat is answered."""
    response = stress.client.get(stress.health_path, timeout_s=10)
    outcome = stress.client.chat(_chat_body(stress.model, "Reply with the single word OK.", 8))
    chat = f"chat answered: {_short(outcome.reply.content, 40)!r}" if outcome.reply else \
        f"chat failed: {outcome.failure}: {outcome.error}"
    return [Check.make("healthy after the stress", "server", response.status_code == 200 and outcome.reply is not None,
                       f"{stress.health_path} HTTP {response.status_code}; {chat}")]


# ---------------------------------------------------------------- the run

def run_stress(client: EndpointClient, settings: StressSettings, *, profile_id: str | None = None,
               profile_ctx_per_slot: int | None = None, profile_slots: int | None = None,
               server_state: Callable[[], tuple[str, list[str]]] | None = None,
               log: Callable[[str], None] = lambda _msg: None) -> StressResult:
    """Run the needle grid and the boundary probes against one endpoint.

    ``server_state`` (from the caller, who knows the container) says what became of a server that
    stopped answering: its state and log tail. Raises EndpointError only when the endpoint cannot
    be probed at the start or its per-slot context is unknown.
    """
    started = time.monotonic()
    if client.provider != "openai-compatible":
        raise EndpointError(f"{client.display_url}: stress speaks the OpenAI chat wire format only "
                            f"(provider {client.provider})")
    info = client.probe()
    n_ctx, n_ctx_source = _known(settings.ctx_per_slot, "--ctx-per-slot", info.n_ctx_per_slot, "/props n_ctx",
                                 profile_ctx_per_slot, "profile CTX_SIZE / PARALLEL")
    if n_ctx is None:
        raise EndpointError(f"{client.display_url}: the per-slot context is unknown (no /props): pass --ctx-per-slot")
    if n_ctx <= settings.max_tokens + 64:
        raise EndpointError(f"{client.display_url}: per-slot context {n_ctx} leaves no room for a haystack with "
                            f"--max-tokens {settings.max_tokens}")
    slots, slots_source = _known(settings.slots, "--slots", info.slots, "/props total_slots",
                                 profile_slots, "profile PARALLEL")
    if slots is None:
        slots, slots_source = 1, "unknown (pass --slots); assumed 1"
    stress = _Stress(client, info, settings, n_ctx, slots, log)
    value, sentence = make_needle(settings.seed)
    grid: list[NeedleCell] = []
    probes: list[Check] = []
    overhead: int | None = None
    died: str | None = None
    log_tail: list[str] = []

    def needle_grid(stress: _Stress) -> list[Check]:
        nonlocal overhead
        overhead = stress.prompt_tokens(needle_prompt(""))
        if overhead is None:
            overhead = stress.count(needle_prompt("")) + 16
            stress.notes.append(f"template overhead estimated at {overhead} tokens (no usage.prompt_tokens)")
        grid.extend(_run_grid(stress, value, sentence, overhead))
        return _grid_checks(grid)

    steps: list[tuple[str, Callable[[_Stress], list[Check]]]] = [
        ("needle grid", needle_grid), ("exact fill", _probe_exact_fill), ("one over", _probe_one_over),
        ("over-long prompt", _probe_over_long), (f"{slots + 1} concurrent requests", _probe_concurrent),
        ("cancel mid-stream", _probe_cancel), ("malformed requests", _probe_malformed),
        ("final health", _probe_health)]
    step = "token counting"
    try:
        stress.choose_counter()
        log(f"tokens counted by {stress.method}; per-slot context {n_ctx} ({n_ctx_source}), {slots} slot(s)")
        for step, probe in steps:
            log(f"probe: {step}")
            probes += _guarded(stress, step, probe)
    except _ServerGone as gone:
        died = f"server died during {step}: {gone}"
    except EndpointError as exc:  # token counting: the one step that cannot fail alone
        problem = stress.alive()
        if problem is None:
            raise
        died = f"server died during {step}: {problem} ({exc})"
    if died is not None:
        if server_state is not None:
            state, log_tail = server_state()
            died += f"; {state}"
        log(died + (f"; log tail: {log_tail[-1]}" if log_tail else ""))
    return StressResult(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), endpoint=client.display_url, model=info.model,
        profile=profile_id, server_kind="llama.cpp" if info.is_llama_cpp else "openai-compatible",
        settings=settings, n_ctx_per_slot=n_ctx, n_ctx_source=n_ctx_source, slots=slots, slots_source=slots_source,
        needle=Needle(seed=settings.seed, value=value, sentence=sentence, filler=FILLER_DESCRIPTION,
                      token_count_method=stress.method, template_overhead_tokens=overhead),
        grid=grid, probes=probes, concurrent_latencies_s=stress.latencies_s, idle_ttft_s=stress.idle_ttft_s,
        ttft_after_cancel_s=stress.ttft_after_cancel_s,
        server_died=died, log_tail=log_tail[-LOG_TAIL_LINES:], duration_s=round(time.monotonic() - started, 1),
        notes=stress.notes + ([] if not stress.extra else ["llama.cpp: boundary and cancel requests sent ignore_eos, "
                                                           "so they generate up to max_tokens"]))


def _known(*pairs: Any) -> tuple[int | None, str]:
    """The first (value, source) pair with a value."""
    for value, source in zip(pairs[::2], pairs[1::2], strict=True):
        if value:
            return value, source
    return None, "unknown"


def _guarded(stress: _Stress, step: str, probe: Callable[[_Stress], list[Check]]) -> list[Check]:
    """A probe's checks; a probe that raises is one failed check, unless the server is gone."""
    try:
        checks = probe(stress)
    except EndpointError as exc:
        _check_alive(stress)
        return [Check.make(step, "server", False, str(exc))]
    _check_alive(stress)
    return checks


def _check_alive(stress: _Stress) -> None:
    problem = stress.alive()
    if problem is not None:
        raise _ServerGone(problem)


# ---------------------------------------------------------------- output

def format_stress(result: StressResult) -> str:
    """The grid as a small table (rows depth, columns fill), then the probe lines."""
    settings = result.settings
    lines = [f"Stress {result.model} at {result.endpoint} — per-slot context {result.n_ctx_per_slot} tokens "
             f"({result.n_ctx_source}), {result.slots} slot(s), answer budget {settings.max_tokens} tokens, "
             f"seed {settings.seed}, {result.duration_s:.0f} s",
             f"Needle: {result.needle.sentence!r} (tokens by {result.needle.token_count_method})"]
    if result.grid:
        headers = ["depth \\ fill"]
        for fill in settings.fills_pct:
            sizes = [c.prompt_tokens or c.target_prompt_tokens for c in result.grid if c.fill_pct == fill]
            headers.append(f"{fill}% (~{max(sizes)} tok)" if sizes else f"{fill}%")
        rows = []
        for depth in settings.depths_pct:
            row = [f"{depth}%"]
            for fill in settings.fills_pct:
                cell = next((c for c in result.grid if c.depth_pct == depth and c.fill_pct == fill), None)
                row.append("-" if cell is None else "ERROR" if cell.error else
                           f"{'PASS' if cell.passed else 'miss'} {cell.latency_s:.2f}s")
            rows.append(row)
        lines.append(tabulate(rows, headers=headers, disable_numparse=True))
    lines.append(format_checks(result.probes))
    if result.concurrent_latencies_s:
        lines.append("concurrent latencies (s): " + ", ".join(f"{s:.2f}" for s in result.concurrent_latencies_s))
    if result.server_died:
        lines.append(result.server_died)
        lines += [f"  | {line}" for line in result.log_tail[-10:]]
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines)


def write_result(result: StressResult, path: Path) -> Path:
    """Write the result JSON atomically."""
    return write_text_atomic(path, result.model_dump_json(indent=2) + "\n")
