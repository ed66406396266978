"""Running packs against an endpoint: requests, tool loops, timeouts, retries, journal, progress.

Per scenario: build the request, send it through the endpoint client under the scenario's
wall-clock budget, answer each tool call with the scenario's mock result (up to ``max_turns``
turns), then hand the Reply to the verifier. The client retries infrastructure failures (429,
5xx, connection lost) a bounded number of times; content failures never are. Every finished
scenario is appended to a journal (one JSON line, flushed and fsynced) so ``resume`` redoes
only unfinished work.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from harness import __version__
from harness.endpoint.client import EndpointClient, RetryPolicy, ServerInfo
from harness.endpoint.replies import ChatReply
from harness.errors import EndpointError, PackError, SandboxError, describe_validation_error
from harness.files import complete_lines, write_text_atomic
from harness.packs import agent, benchlocal, rubric, thinking, world
from harness.packs.codejudge import AWAITING_SANDBOX, DEFERRED_VERIFIERS, SandboxJudge
from harness.packs.sandbox import AgentSandbox, require_agent_image
from harness.packs.schema import (
    INFRA_FAILURES,
    NOT_SCORED,
    AgentHealth,
    Exchange,
    FailureMode,
    JudgeInfo,
    Pack,
    PackResult,
    Reply,
    RunResult,
    Sampling,
    SamplingProvenance,
    SamplingSource,
    Scenario,
    ScenarioResult,
    ThinkingState,
    TimeoutPolicy,
    ToolCallRecord,
    UnavailablePack,
    Verdict,
    status_for,
)
from harness.packs.verifiers import judge
from harness.packs.verifiers._common import match_value

CANONICAL_SAMPLING = Sampling(temperature=0.0)
DEFAULT_MAX_TOKENS = 512
JOURNAL_TAG = "benchwright-packs-journal"
TPS_PROBE_PROMPT = "Count from one to twenty in words, separated by spaces."


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs besides the packs; the CLI builds it from flags."""

    base_url: str
    model: str | None = None
    profile_id: str | None = None
    mode: str = "medium"
    sampling_source: SamplingSource = "canonical"
    explicit_sampling: Sampling = field(default_factory=Sampling)
    thinking: bool | None = None
    thinking_budget_tokens: int | None = None
    max_tokens_cap: int | None = None
    timeout_override_s: float | None = None
    concurrency: int | None = None
    retries: int = 2
    retry_backoff_s: float = 1.0
    api_key_env: str | None = None  # the variable's name, for messages; the key itself stays in the client
    max_infra_failures_in_a_row: int = 5  # then the endpoint is gone: stop instead of failing every scenario
    limit_per_pack: int | None = None  # only the first N scenarios of each pack (a short tour)
    progress: Callable[[str], None] | None = None


def sampling_for(options: RunOptions) -> Sampling:
    """The sampler fields every request carries (max_tokens is set per scenario)."""
    if options.sampling_source == "server":
        return Sampling()
    if options.sampling_source == "explicit":
        return options.explicit_sampling.model_copy(update={"max_tokens": None})
    return CANONICAL_SAMPLING


def max_tokens_for(pack: Pack, scenario: Scenario, options: RunOptions) -> int:
    wanted = (scenario.sampling_overrides.max_tokens if scenario.sampling_overrides else None) \
        or pack.meta.sampling_defaults.max_tokens or DEFAULT_MAX_TOKENS
    return min(wanted, options.max_tokens_cap) if options.max_tokens_cap else wanted


def budget_seconds(pack: Pack, scenario: Scenario, max_tokens: int, measured_tps: float | None,
                   override_s: float | None) -> float:
    """base × max(1, reference TPS / measured TPS) × max(1, max_tokens / baseline tokens)."""
    if override_s is not None:
        return override_s
    base = scenario.max_seconds_override or pack.meta.default_max_seconds
    speed = max(1.0, pack.meta.timeout_reference_tps / measured_tps) if measured_tps else 1.0
    length = max(1.0, max_tokens / pack.meta.baseline_max_tokens)
    return round(base * speed * length, 2)


def thinking_for(pack: Pack, options: RunOptions) -> bool:
    return pack.meta.default_thinking if options.thinking is None else options.thinking


def thinking_budget_for(pack: Pack, options: RunOptions) -> int:
    """Tokens added to max_tokens for thinking: --thinking-max-tokens, else the pack's own budget."""
    if not thinking_for(pack, options):
        return 0
    return options.thinking_budget_tokens or pack.meta.thinking_max_tokens or 0


def build_payload(info: ServerInfo, pack: Pack, scenario: Scenario, messages: list[dict],
                  options: RunOptions) -> dict[str, Any]:
    """The exact request body for one turn."""
    max_tokens = max_tokens_for(pack, scenario, options) + thinking_budget_for(pack, options)  # room to think
    thinking = thinking_for(pack, options)
    payload: dict[str, Any] = {"model": info.model, "messages": messages, "max_tokens": max_tokens,
                               **sampling_for(options).model_dump(exclude_none=True)}
    if scenario.tools:
        payload["tools"] = scenario.tools
    if info.thinking_control == "chat_template_kwargs":
        payload["chat_template_kwargs"] = {"enable_thinking": thinking}
    elif info.thinking_control == "anthropic" and thinking:
        payload["chat_template_kwargs"] = {"enable_thinking": True}  # the Anthropic edge sends a thinking block
    elif info.thinking_control == "reasoning_effort":
        payload["reasoning_effort"] = "medium" if thinking else "low"
    return benchlocal.request_body(payload, pack, scenario, thinking=thinking, sampling_source=options.sampling_source)


def mock_result(scenario: Scenario, name: str, arguments: Any) -> Any:
    """The scenario's mock answer to a tool call (first matching rule), or an unknown-tool error."""
    args = arguments if isinstance(arguments, dict) else {}
    for rule in scenario.tool_results:
        if rule.name == name and all(match_value(m, args.get(k)) for k, m in (rule.when_args or {}).items()):
            return rule.result
    return {"error": f"unknown tool or arguments: {name}"}


def _verdict(scenario: Scenario, reply: Reply, rubric_judge: rubric.Judge | None) -> tuple[Verdict, float]:
    """The verdict, asking the rubric judge first where the scenario has a rubric; also the
    seconds the judge took (they are not the model's latency)."""
    if scenario.verifier.type in DEFERRED_VERIFIERS:  # judged per pack in a sandbox once every reply is in
        return Verdict(score=0, failure_mode="verifier_fail", detail=AWAITING_SANDBOX), 0.0
    started = time.monotonic()
    if scenario.verifier.type == "rubric" and rubric_judge is not None:
        reply.judgement = rubric.judge_reply(rubric_judge, scenario, reply)
    judge_s = time.monotonic() - started
    return judge(scenario, reply), judge_s


def run_scenario(client: EndpointClient, info: ServerInfo, pack: Pack, scenario: Scenario,
                 options: RunOptions, budget_s: float, rubric_judge: rubric.Judge | None = None) -> ScenarioResult:
    """Run one scenario (all its turns) and judge it."""
    if benchlocal.is_stub(scenario):  # nothing here can judge it: not sent, not scored
        return _result(pack, scenario, score=0, failure_mode=NOT_SCORED, detail=benchlocal.stub_detail(
            pack.meta.id, scenario), reply=None, exchanges=[], started=time.monotonic(), budget_s=budget_s,
            tokens=(0, 0), retries=0)
    if pack.meta.sandbox is not None or pack.meta.world is not None:
        return run_agentic(client, info, pack, scenario, options, budget_s, rubric_judge)
    started = time.monotonic()
    deadline = started + budget_s
    messages = [dict(m) for m in scenario.messages]
    exchanges: list[Exchange] = []
    calls: list[ToolCallRecord] = []
    prompt_tokens = completion_tokens = retries_total = 0
    reply = Reply()
    for turn in range(1, scenario.max_turns + 1):
        payload = build_payload(info, pack, scenario, [dict(m) for m in messages], options)
        outcome = client.chat(payload, deadline=deadline)
        retries_total += len(outcome.retries)
        answer = outcome.reply
        own = len(scenario.messages)
        exchanges.append(Exchange(request={**payload, "messages": payload["messages"][own:]}, scenario_messages=own,
                                  response=answer.body if answer else None,
                                  error=outcome.error or None, latency_ms=round(outcome.latency_ms, 1),
                                  retries=[r.model_dump() for r in outcome.retries]))
        if answer is None:
            return _result(pack, scenario, score=0, failure_mode=outcome.failure or "server_error",
                           detail=outcome.error, reply=reply if turn > 1 else None, exchanges=exchanges,
                           started=started, budget_s=budget_s, tokens=(prompt_tokens, completion_tokens),
                           retries=retries_total)
        prompt_tokens += answer.usage.prompt_tokens or 0
        completion_tokens += answer.usage.completion_tokens or 0
        reply = Reply(content=answer.content, raw_content=answer.raw_content, reasoning=answer.reasoning,
                      content_source=answer.content_source, tool_calls=calls, finish_reason=answer.finish_reason,
                      turns=turn)
        if not answer.tool_calls:
            break
        messages.append({"role": "assistant", "content": answer.raw_content, "tool_calls": answer.tool_calls})
        for index, call in enumerate(answer.tool_calls):
            function = call.get("function") or {}
            name = function.get("name") or ""
            arguments, valid = agent.parse_arguments(function.get("arguments"))
            result = mock_result(scenario, name, arguments)
            calls.append(ToolCallRecord(turn=turn, name=name, arguments=arguments, arguments_valid_json=valid,
                                        result=result))
            messages.append({"role": "tool", "tool_call_id": call.get("id") or f"call_{turn}_{index}",
                             "content": result if isinstance(result, str) else json.dumps(result)})
        reply = reply.model_copy(update={"content": "", "tool_calls": list(calls)})
    verdict, judge_s = _verdict(scenario, reply, rubric_judge)
    return _result(pack, scenario, score=verdict.score, failure_mode=verdict.failure_mode, detail=verdict.detail,
                   checks=verdict.checks, reply=reply, exchanges=exchanges, started=started + judge_s,
                   budget_s=budget_s, tokens=(prompt_tokens, completion_tokens), retries=retries_total)


class _Conversation:
    """The requests of one agent scenario: each turn sent under the scenario's deadline, every
    exchange recorded, tokens and retries counted, and the first endpoint failure kept."""

    def __init__(self, client: EndpointClient, info: ServerInfo, pack: Pack, scenario: Scenario,
                 options: RunOptions, tools: list[dict[str, Any]] | None):
        self.client, self.info, self.pack, self.scenario, self.options = client, info, pack, scenario, options
        self.tools = tools
        self.deadline = 0.0
        self.exchanges: list[Exchange] = []
        self.prompt_tokens = self.completion_tokens = self.retries = 0
        self.failure: tuple[FailureMode, str] | None = None

    def send(self, turn_messages: list[dict[str, Any]]) -> ChatReply | None:
        payload = build_payload(self.info, self.pack, self.scenario, [dict(m) for m in turn_messages], self.options)
        if self.tools is not None:
            payload["tools"] = self.tools
        outcome = self.client.chat(payload, deadline=self.deadline)
        self.retries += len(outcome.retries)
        answer = outcome.reply
        self.exchanges.append(Exchange(request=payload, scenario_messages=0,
                                       response=answer.body if answer else None, error=outcome.error or None,
                                       latency_ms=round(outcome.latency_ms, 1),
                                       retries=[r.model_dump() for r in outcome.retries]))
        if answer is None:
            self.failure = (outcome.failure or "server_error", outcome.error)
            return None
        self.prompt_tokens += answer.usage.prompt_tokens or 0
        self.completion_tokens += answer.usage.completion_tokens or 0
        return answer


def _episode_reply(episode: agent.Episode) -> Reply:
    """What the episode ended with, as the verifiers see a reply (the last turn's text fields)."""
    last = episode.last
    return Reply(content=episode.answer, raw_content=last.raw_content if last else "",
                 reasoning=last.reasoning if last else "", content_source=last.content_source if last else "none",
                 tool_calls=episode.calls, finish_reason=last.finish_reason if last else None,
                 turns=max(1, episode.stats.turns), agent=episode.stats)


def run_agentic(client: EndpointClient, info: ServerInfo, pack: Pack, scenario: Scenario, options: RunOptions,
                budget_s: float, rubric_judge: rubric.Judge | None = None) -> ScenarioResult:
    """An agent scenario: the tool loop against mock services (world packs) or in its own sandbox
    container (sandboxed packs; or one reply whose solution is written in), then checks on the
    state left behind. A sandbox's wall budget starts once it is up; the container's own time is
    recorded in the evidence's timings."""
    started = time.monotonic()
    sandboxed = pack.meta.sandbox is not None
    agentic = pack.meta.sandbox is None or pack.meta.sandbox.mode == "agent"
    tools = (agent.AGENT_TOOLS if sandboxed else world.WORLD_TOOLS) if agentic else None
    talk = _Conversation(client, info, pack, scenario, options, tools)
    prompt = agent.SYSTEM_PROMPT if sandboxed else agent.ASSISTANT_PROMPT
    messages = agent.with_system_prompt(scenario.messages, prompt) if agentic else [dict(m) for m in scenario.messages]

    def finished(*, judge_s: float = 0.0, **fields: Any) -> ScenarioResult:
        return _result(pack, scenario, exchanges=talk.exchanges, started=started + judge_s, budget_s=budget_s,
                       tokens=(talk.prompt_tokens, talk.completion_tokens), retries=talk.retries, **fields)

    def endpoint_failed() -> ScenarioResult:
        mode, detail = talk.failure or ("server_error", "no reply")
        return finished(score=0, failure_mode=mode, detail=detail, reply=None)

    def episode_in(box: agent.Toolbox, limits: Any) -> agent.Episode | None:
        """The loop; None when the endpoint failed outright (anything but running out of time)."""
        episode = agent.run_episode(talk.send, box, limits, messages, tools=tools)
        if talk.failure and talk.failure[0] != "timeout":
            return None
        if talk.failure:
            episode.stats.end_reason = "wall_budget"
        return episode

    try:
        if not sandboxed:
            assert pack.meta.world is not None and scenario.world is not None  # the loader guarantees both
            mocks = world.World(world.WorldSpec.model_validate(scenario.world))
            talk.deadline = started + budget_s
            episode = episode_in(mocks, pack.meta.world)
            if episode is None:
                return endpoint_failed()
            reply = _episode_reply(episode)
            reply.world = mocks.evidence(episode.status, episode.answer)
        else:
            assert scenario.sandbox is not None  # the loader guarantees it
            asserts = [dict(a) for a in scenario.verifier.asserts]
            with AgentSandbox(pack, scenario) as box:
                talk.deadline = time.monotonic() + budget_s
                if agentic:
                    episode = episode_in(box, pack.meta.sandbox)
                    if episode is None:
                        return endpoint_failed()
                    evidence = box.finish(asserts, status=episode.status, answer=episode.answer)
                    reply = _episode_reply(episode)
                else:
                    answer = talk.send(messages)
                    if answer is None:
                        return endpoint_failed()
                    status = agent.apply_single_reply(box, scenario.sandbox.solution_path, answer.content)
                    evidence = box.finish(asserts, status=status, answer=answer.content)
                    reply = Reply(content=answer.content, raw_content=answer.raw_content,
                                  reasoning=answer.reasoning, content_source=answer.content_source,
                                  finish_reason=answer.finish_reason)
            reply.sandbox = evidence
    except SandboxError as exc:
        return finished(score=0, failure_mode="sandbox_error", detail=str(exc), reply=None)
    except Exception as exc:  # noqa: BLE001 - a bug in our loop must cost one scenario, not the run
        return finished(score=0, failure_mode="agent_runner_crashed", detail=f"{type(exc).__name__}: {exc}",
                        reply=None)
    verdict, judge_s = _verdict(scenario, reply, rubric_judge)
    return finished(judge_s=judge_s, score=verdict.score, failure_mode=verdict.failure_mode, detail=verdict.detail,
                    checks=verdict.checks, reply=reply)


def _result(pack: Pack, scenario: Scenario, *, score: float, failure_mode: FailureMode, detail: str,
            reply: Reply | None, exchanges: list[Exchange], started: float, budget_s: float, tokens: tuple[int, int],
            retries: int, checks: list | None = None) -> ScenarioResult:
    return ScenarioResult(pack_id=pack.meta.id, scenario_id=scenario.id, category=scenario.category, score=score,
                          status=status_for(score), failure_mode=failure_mode, detail=detail, checks=checks or [],
                          reply=reply, exchanges=exchanges, prompt_tokens=tokens[0], completion_tokens=tokens[1],
                          latency_ms=round((time.monotonic() - started) * 1000, 1), budget_s=budget_s,
                          retries=retries, scenario=scenario)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(fraction * 100) * len(ordered) // 100))
    return ordered[min(rank, len(ordered)) - 1]


def aggregate(pack_id: str, version: str, source: str, fmt: str, results: list[ScenarioResult]) -> PackResult:
    """A pack's totals from its scenario results (used by runs and by rescore); scenarios nothing
    could judge (BenchLocal ``_stub``) are listed but stay out of the totals."""
    answered = [r.latency_ms for r in results if r.failure_mode not in INFRA_FAILURES | {NOT_SCORED}]
    scored = [r for r in results if r.failure_mode != NOT_SCORED]
    return PackResult(
        pack_id=pack_id, version=version, source=source, format=fmt,
        passed=sum(r.status == "pass" for r in scored), partial=sum(r.status == "partial" for r in scored),
        total=len(scored), mean_score=round(sum(r.score for r in scored) / len(scored), 2) if scored else 0.0,
        p50_latency_ms=percentile(answered, 0.50), p95_latency_ms=percentile(answered, 0.95),
        infra_failures=sum(r.failure_mode in INFRA_FAILURES for r in results),
        failure_counts=dict(Counter(r.failure_mode for r in results)), agent_health=agent_health(results),
        thinking=thinking.health(results), consistency=thinking.consistency(results), scenarios=results)


def _expected_status(scenario: Scenario) -> str | None:
    return next((a.get("status") for a in scenario.verifier.asserts if a.get("check") == "submitted"), None)


def agent_health(results: list[ScenarioResult]) -> AgentHealth | None:
    """How the model behaved as an agent over a pack's agent scenarios (None for other packs)."""
    replies = [(r, r.reply) for r in results if r.scenario.sandbox is not None or r.scenario.world is not None]
    if not replies:
        return None
    stats = [(r, reply.agent) for r, reply in replies if reply is not None and reply.agent is not None]
    calls = sum(s.tool_calls for _, s in stats)
    solved = [s.turns for r, s in stats if r.status == "pass"]
    refusals = sum(1 for r, s in stats if s.submitted_status in ("unsafe", "impossible")
                   and _expected_status(r.scenario) not in ("unsafe", "impossible"))
    overheads = [sum(reply.sandbox.timings_ms.values())
                 for _, reply in replies if reply is not None and reply.sandbox is not None]
    premised = [r for r, _ in replies if r.scenario.false_premise and r.failure_mode not in INFRA_FAILURES]
    return AgentHealth(
        episodes=len(replies), mean_turns_to_solve=round(sum(solved) / len(solved), 2) if solved else None,
        tool_calls=calls,
        hallucination_rate=round(sum(s.hallucinations for _, s in stats) / calls, 4) if calls else None,
        schema_error_rate=round(sum(s.schema_errors for _, s in stats) / calls, 4) if calls else None,
        loop_detections=sum(s.loop_detected for _, s in stats), refusals_of_safe_tasks=refusals,
        false_premises=len(premised),
        sycophancy_rate=round(sum(r.status != "pass" for r in premised) / len(premised), 4) if premised else None,
        mean_sandbox_overhead_ms=round(sum(overheads) / len(overheads), 1) if overheads else None)


def _identity(options: RunOptions, info: ServerInfo, packs: list[Pack],
              rubric_judge: rubric.Judge | None) -> dict[str, Any]:
    """What makes two runs the same run: a resume must not mix two selections, settings or judges."""
    judged = {"judge": rubric_judge.info.model} if rubric_judge else {}  # absent key: journals of older runs match
    return {"model": info.model, "mode": options.mode, **judged,
            "sampling_source": options.sampling_source, "sampling": sampling_for(options).model_dump(),
            "thinking": options.thinking, "max_tokens_cap": options.max_tokens_cap,
            **({"thinking_budget_tokens": options.thinking_budget_tokens} if options.thinking_budget_tokens else {}),
            "selection": sorted(f"{p.meta.id}/{s.id}" for p in packs for s in p.scenarios)}


def _finished(path: Path, lines: list[str], identity: dict[str, Any] | None) -> dict[tuple[str, str], ScenarioResult]:
    """Finished scenarios of a journal's lines (identity checked unless None); infra failures are redone."""
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if not isinstance(header, dict) or header.get("journal") != JOURNAL_TAG:
        raise PackError(f"{path}:1: not a packs journal")
    if identity is not None and header.get("identity") != identity:
        changed = [k for k in identity if (header.get("identity") or {}).get(k) != identity[k]]
        raise PackError(f"{path}: journal is from a different run ({', '.join(changed)} differ); "
                        "delete it or run without --resume")
    done: dict[tuple[str, str], ScenarioResult] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            result = ScenarioResult.model_validate_json(line)
        except ValueError:
            raise PackError(f"{path}:{number}: not a scenario result; delete the journal to start over") from None
        if result.failure_mode not in INFRA_FAILURES:
            done[(result.pack_id, result.scenario_id)] = result
    return done


class _Journal:
    """Append-only JSONL of finished scenarios, fsynced per line, and locked: two runs writing
    one journal would interleave their lines. A line torn by a kill is cut off on open."""

    def __init__(self, path: Path | None, identity: dict[str, Any], resume: bool):
        self.handle: TextIO | None = None
        self.done: dict[tuple[str, str], ScenarioResult] = {}
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise PackError(f"{path}: another packs run is writing this journal; wait for it or use another "
                            "--save-json") from None
        self.handle = handle
        try:
            lines = complete_lines(path)
            if lines and resume:
                self.done = _finished(path, lines, identity)
                return
            if lines and (earlier := _finished(path, lines, None)):
                raise PackError(f"{path}: holds {len(earlier)} finished scenario(s) of an earlier run; pass "
                                "--resume to continue it, or delete the file to start over")
            handle.truncate(0)
            self._write(json.dumps({"journal": JOURNAL_TAG, "identity": identity}))
        except BaseException:
            self.close()
            raise

    def _write(self, line: str) -> None:
        assert self.handle is not None  # called only once the journal file is open
        self.handle.write(line + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def add(self, result: ScenarioResult) -> None:
        if self.handle:
            self._write(result.model_dump_json())

    def close(self) -> None:
        if self.handle:
            self.handle.close()  # closing releases the lock
            self.handle = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def measure_tps(client: EndpointClient, info: ServerInfo, max_tokens: int = 48, timeout_s: float = 60) -> float | None:
    """Decode tokens per second of one short completion (for timeout scaling); None without a usable count."""
    payload = {"model": info.model, "messages": [{"role": "user", "content": TPS_PROBE_PROMPT}],
               "max_tokens": max_tokens, "temperature": 0}
    outcome = client.chat(payload, deadline=time.monotonic() + timeout_s)
    if outcome.reply is None:
        raise EndpointError(f"startup probe failed: {outcome.failure} ({outcome.error})")
    predicted = (outcome.reply.timings or {}).get("predicted_per_second")
    if predicted and predicted > 0:
        return round(float(predicted), 2)
    tokens = outcome.reply.usage.completion_tokens or 0
    seconds = outcome.reply.latency_ms / 1000
    return round(tokens / seconds, 2) if tokens and seconds > 0 else None


def without_rubrics(packs: list[Pack]) -> tuple[list[Pack], list[str]]:
    """The packs less their rubric-judged scenarios (no judge to score them), and a note per pack."""
    kept, notes = [], []
    for pack in packs:
        judged = [s for s in pack.scenarios if s.verifier.type == "rubric"]
        if judged:
            notes.append(f"{pack.meta.id}: {len(judged)} rubric-judged scenario(s) not run "
                         f"({', '.join(s.id for s in judged)}): no --judge PROFILE given")
        rest = [s for s in pack.scenarios if s.verifier.type != "rubric"]
        if rest:
            kept.append(pack.model_copy(update={"scenarios": rest}))
    return kept, notes


def _run_one(client: EndpointClient, info: ServerInfo, pack: Pack, scenario: Scenario, options: RunOptions,
             budget_s: float, rubric_judge: rubric.Judge | None) -> ScenarioResult:
    result = run_scenario(client, info, pack, scenario, options, budget_s, rubric_judge)
    return result.model_copy(update={"thinking_requested": thinking_for(pack, options)})


def judge_deferred(pack: Pack, results: list[ScenarioResult],
                   sandbox_judges: Mapping[str, SandboxJudge]) -> list[ScenarioResult]:
    """Scenarios whose verdict needs the sandbox (code packs), judged as one batch per verifier type."""
    out = list(results)
    for kind in DEFERRED_VERIFIERS:
        picked = [i for i, r in enumerate(out) if r.scenario.verifier.type == kind and r.reply is not None
                  and r.failure_mode not in INFRA_FAILURES]
        if not picked:
            continue
        judge_fn = sandbox_judges.get(kind)
        if judge_fn is None:
            for i in picked:
                out[i] = out[i].model_copy(update={"failure_mode": "sandbox_error", "score": 0, "status": "fail",
                                                   "detail": f"no sandbox judge for {kind} scenarios in this run"})
            continue
        for i, judged in zip(picked, judge_fn([out[i] for i in picked]), strict=True):
            out[i] = judged
    return out


def run_packs(packs: list[Pack], options: RunOptions, *, journal_path: Path | None = None,
              resume: bool = False, client: EndpointClient | None = None,
              rubric_judge: rubric.Judge | None = None, sandbox_judges: Mapping[str, SandboxJudge] | None = None,
              unavailable: list[UnavailablePack] | None = None) -> RunResult:
    """Run every scenario of the given packs and return the run's result record.

    Without a client, one is made for ``options.base_url`` (no key; tests and scripts). Without
    a judge, rubric-judged scenarios are left out (and the result says so); with one, the judge
    is first calibrated on the rubrics' graded references. Code packs' replies are judged per
    pack by ``sandbox_judges`` (by verifier type) once all are in; ``unavailable`` packs (no
    data on this machine) are carried into the result as such.
    """
    started_at = _now()
    notes: list[str] = []
    if options.limit_per_pack:
        packs = [p.model_copy(update={"scenarios": p.scenarios[: options.limit_per_pack]}) for p in packs]
    if rubric_judge is None:
        packs, notes = without_rubrics(packs)
        if not packs:
            raise PackError("every selected scenario is rubric-judged; give --judge PROFILE to run them")
    if any(p.meta.sandbox is not None for p in packs):
        require_agent_image()  # before any scenario: one line naming `make sandboxes`
    own_client = client is None
    if client is None:
        client = EndpointClient(options.base_url, model_id=options.model,
                                retry=RetryPolicy(max_retries=options.retries, backoff_s=options.retry_backoff_s),
                                max_connections=max(8, options.concurrency or 1))
    try:
        info = client.probe()
        tps = measure_tps(client, info) if options.timeout_override_s is None else None
        concurrency = max(1, min(options.concurrency or info.slots or 1, info.slots or options.concurrency or 1))
        journal = _Journal(journal_path, _identity(options, info, packs, rubric_judge), resume)
        done = journal.done
        jobs = [(pack, s) for pack in packs for s in pack.scenarios if (pack.meta.id, s.id) not in done]
        results: dict[tuple[str, str], ScenarioResult] = dict(done)
        total = sum(len(p.scenarios) for p in packs)
        say = options.progress or (lambda line: None)
        for note in notes:
            say(f"note: {note}")
        judge_info = None
        if rubric_judge is not None:
            judge_info = JudgeInfo(model=rubric_judge.info.model, endpoint=rubric_judge.endpoint,
                                   profile=rubric_judge.profile)
            if any(s.verifier.type == "rubric" for p in packs for s in p.scenarios):
                judge_info.calibration = rubric.calibrate(rubric_judge, packs, say)
        if done:
            say(f"resuming: {len(done)}/{total} scenarios already done")
        pool = ThreadPoolExecutor(max_workers=concurrency)
        stopped = False
        try:
            futures = []
            for pack, scenario in jobs:
                budget = budget_seconds(pack, scenario, max_tokens_for(pack, scenario, options)
                                        + thinking_budget_for(pack, options), tps,
                                        options.timeout_override_s)
                futures.append(pool.submit(_run_one, client, info, pack, scenario, options, budget,
                                           rubric_judge))
            streak = 0
            for future in as_completed(futures):
                result = future.result()
                results[(result.pack_id, result.scenario_id)] = result
                journal.add(result)
                mark = "✓" if result.status == "pass" else "✗"
                say(f"[{len(results)}/{total}] {result.pack_id} {result.scenario_id} {mark} "
                    f"{result.failure_mode} ({result.latency_ms / 1000:.1f}s)")
                streak = streak + 1 if result.failure_mode in INFRA_FAILURES else 0
                if streak >= options.max_infra_failures_in_a_row:
                    kept = sum(1 for r in results.values() if r.failure_mode not in INFRA_FAILURES)
                    where = f" in {journal_path}" if journal_path else ""
                    raise PackError(f"stopped after {streak} infrastructure failures in a row (last: "
                                    f"{result.failure_mode}: {result.detail[:200]}); {kept} finished "
                                    f"scenario(s) are kept{where}; fix the endpoint and run the same "
                                    "command with --resume")
        except BaseException:
            # Stopped (Ctrl-C, spend guard, a dead endpoint): drop queued scenarios and abandon the
            # requests in flight (their connections are closed) instead of waiting out their budget.
            # Finished work is journaled.
            stopped = True
            pool.shutdown(wait=False, cancel_futures=True)
            client.close()
            raise
        finally:
            if not stopped:
                pool.shutdown(wait=True)
            journal.close()
    finally:
        if own_client:
            client.close()
    pack_results = [aggregate(p.meta.id, p.meta.version, p.source, p.meta.format,
                              judge_deferred(p, [results[(p.meta.id, s.id)] for s in p.scenarios],
                                             sandbox_judges or {})) for p in packs]
    pack_results = [r.model_copy(update={"ignored_fields": p.meta.ignored_fields})
                    for r, p in zip(pack_results, packs, strict=True)]
    thinking_values = {thinking_for(p, options) for p in packs}
    return RunResult(
        run_id=uuid.uuid4().hex[:12], started_at=started_at, finished_at=_now(), harness_version=__version__,
        endpoint=client.display_url, model=info.model, profile=options.profile_id, mode=options.mode,
        server_slots=info.slots, concurrency=concurrency,
        sampling=SamplingProvenance(canonical=options.sampling_source == "canonical", source=options.sampling_source,
                                    params=sampling_for(options)),
        thinking=ThinkingState(requested=thinking_values.pop() if len(thinking_values) == 1 else None,
                               control=info.thinking_control, budget_tokens=options.thinking_budget_tokens),
        timeouts=TimeoutPolicy(measured_tps=tps, override_s=options.timeout_override_s),
        complete=len(results) == sum(len(p.scenarios) for p in packs), packs=pack_results, judge=judge_info,
        notes=notes, thinking_validity=thinking.run_validity(s for p in pack_results for s in p.scenarios),
        unavailable=list(unavailable or []))


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def write_result(result: RunResult, path: Path) -> Path:
    """Write the result JSON atomically (``.partial`` then rename)."""
    return write_text_atomic(path, result.model_dump_json(indent=1))


def read_result(path: Path) -> RunResult:
    """Load a result JSON, naming the file and field when it does not fit the schema."""
    try:
        return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PackError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValidationError as exc:
        raise PackError(f"{path}: not a packs result file ({describe_validation_error(exc)})") from None
    except ValueError as exc:  # not UTF-8
        raise PackError(f"{path}: not a packs result file ({str(exc).splitlines()[0]})") from None
