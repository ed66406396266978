"""Typed records on every arrow of the packs data flow.

    PackMeta + Scenario  (loaded from packs/<id>/)  ->  request(s)  ->  Reply
    Reply -> Verdict (pure verifier)  ->  ScenarioResult  ->  PackResult  ->  RunResult (JSON)

RunResult is the one self-contained record of a run: later tools (reports, baselines, diff,
rescore) read only this file, so it carries the scenario definitions, exact requests and raw
replies next to the scores.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RESULT_SCHEMA_VERSION: Final = 1
PASS_SCORE = 85.0
PARTIAL_SCORE = 60.0

FailureMode = Literal[
    "passed",             # score >= PASS_SCORE
    "verifier_fail",      # answered, but the checks said no (partial credit possible)
    "wrong_answer",       # a final answer was found and it is wrong
    "invalid_json",       # JSON was required and the reply does not parse
    "no_answer_found",    # empty reply, or no final answer where one was required
    "schema_violation",   # parsed, but the declared top-level shape/fields are wrong
    "wrong_structure",    # a non-JSON format that does not parse or has the wrong shape
    "token_limit",        # a content failure while finish_reason == "length"
    "timeout",            # the per-scenario budget ran out
    "http_error",         # the server answered 4xx (not retried)
    "server_error",       # the server answered 5xx (retried, then recorded)
    "endpoint_unreachable",  # connection refused/reset (retried, then recorded)
    "bad_reply",          # HTTP 200 whose body is not a chat completion (HTML, truncated JSON, ...)
    "agent_runner_timeout",  # the agent's episode ran out of wall-clock budget before it submitted
    "agent_runner_crashed",  # the harness's agent loop failed (a bug of ours, not a model miss)
    "loop_detected",      # the agent repeated the same tool call until the loop guard stopped it
    "tool_hallucination",  # the agent kept calling tools that do not exist
    "sandbox_error",      # the sandbox container could not be created, died, or the engine failed
    "judge_error",        # the rubric judge failed or its reply did not parse: no score, never a guess
    "verifier_not_implemented",  # a BenchLocal ``_stub`` scenario: not sent, not scored (see harness.packs.benchlocal)
]
FAILURE_MODES: tuple[str, ...] = FailureMode.__args__  # type: ignore[attr-defined]
NOT_SCORED: Final = "verifier_not_implemented"  # results with this mode stay out of totals and means
INFRA_FAILURES = frozenset({"timeout", "http_error", "server_error", "endpoint_unreachable", "bad_reply",
                            "sandbox_error", "agent_runner_crashed", "judge_error"})
Status = Literal["pass", "partial", "fail"]
SamplingSource = Literal["canonical", "server", "explicit"]


def status_for(score: float) -> Status:
    """The upstream thresholds: pass >= 85, partial >= 60, fail otherwise."""
    return "pass" if score >= PASS_SCORE else "partial" if score >= PARTIAL_SCORE else "fail"


class _Strict(BaseModel):
    # NaN or inf in a result file is damage, not a score.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Sampling(_Strict):
    """Sampler settings sent with a request; None means "leave it to the server"."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    max_tokens: int | None = Field(default=None, gt=0)


class AgentLimits(_Strict):
    """The budgets of an agent episode, whatever its tools act on."""

    max_turns: int = Field(default=16, ge=1, le=100)
    max_tokens_total: int = Field(default=16000, gt=0, description="completion tokens per episode")
    loop_repeats: int = Field(default=3, ge=2, description="the same call this many times in a row is a loop")
    max_hallucinations: int = Field(default=3, ge=1, description="unknown-tool calls before the episode ends")


class PackWorld(AgentLimits):
    """An agent pack whose tools are the in-process mock services of ``harness.packs.world``."""


class PackSandbox(AgentLimits):
    """How a sandboxed pack runs: an agent loop with tools, or one reply whose solution block is executed."""

    mode: Literal["agent", "single_reply"]
    command_timeout_s: float = Field(default=10, gt=0, le=600)
    output_limit_bytes: int = Field(default=8192, ge=256, description="per stream, per command, shown to the model")


class PackMeta(_Strict):
    """Pack metadata (pack.json, or the BenchLocal ``__meta__`` line)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str
    title: str = ""
    license: str = ""
    description: str = ""
    sampling_defaults: Sampling = Sampling(max_tokens=512)
    default_thinking: bool = False
    default_max_seconds: float = Field(default=60.0, gt=0)
    timeout_reference_tps: float = Field(default=30.0, gt=0)
    baseline_max_tokens: int = Field(default=512, gt=0, description="max_tokens the base seconds were set for")
    format: Literal["benchwright", "benchlocal"] = "benchwright"
    modes: list[Literal["quick", "medium", "full", "reasoning"]] = Field(
        default=["medium"], description="run modes that include this pack")
    thinking_max_tokens: int | None = Field(
        default=None, gt=0, description="thinking budget added to max_tokens when thinking is on "
                                        "(--thinking-max-tokens overrides)")
    sandbox: PackSandbox | None = Field(default=None, description="set for packs judged in the agent sandbox")
    world: PackWorld | None = Field(default=None, description="set for agent packs acting on mock services")
    verifier_module: str | None = Field(default=None, description="BenchLocal field, kept for provenance")
    request_defaults: dict[str, Any] = Field(default={}, description="BenchLocal: non-sampler request fields "
                                             "(tool_choice, chat_template_kwargs, ...) sent with every request")
    thinking_sampling: Sampling | None = Field(default=None, description="BenchLocal: sampler used when thinking is on")
    skip_reason: str | None = Field(default=None, description="BenchLocal: why the pack has no scenarios to run "
                                                                "(gated dataset)")
    ignored_fields: list[str] = Field(default=[], description="BenchLocal fields kept but not acted on, as paths")
    extras: dict[str, Any] = Field(default={}, description="BenchLocal meta fields we do not use, kept verbatim")


class VerifierSpec(BaseModel):
    """Which verifier judges a scenario and with what checks; each verifier validates its own fields."""

    model_config = ConfigDict(extra="allow")

    type: str
    asserts: list[dict[str, Any]] = []


class ToolResultRule(_Strict):
    """A mock tool result: the first rule whose name (and argument subset) matches answers the call."""

    name: str
    when_args: dict[str, Any] | None = None
    result: Any


class ToolCallOut(_Strict):
    """One tool call the model made in a reference turn (and in a recorded reply)."""

    name: str
    arguments: dict[str, Any] | str = {}


class ReferenceTurn(_Strict):
    """One assistant turn of a passing answer: documents the scenario and drives the test double."""

    content: str = ""
    tool_calls: list[ToolCallOut] = []


class ScenarioSandbox(_Strict):
    """The workspace a sandboxed scenario starts from, and what the checks get afterwards."""

    fixture: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                                description="folder under the pack's fixtures/, copied into /workspace")
    files: dict[str, str] = Field(default={}, description="inline files written after the fixture")
    setup: list[str] = Field(default=[], description="shell commands run as the agent before the episode")
    hidden: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                               description="folder under the pack's hidden/, copied in only after the episode")
    solution_path: str | None = Field(default=None, description="single-reply packs: the file the answer replaces")


class Scenario(_Strict):
    """One prompt (or tool conversation) with the verifier that judges it."""

    id: str = Field(min_length=1)
    category: str = ""
    description: str = ""
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_results: list[ToolResultRule] = []
    max_turns: int = Field(default=8, ge=1, le=8)
    verifier: VerifierSpec
    sampling_overrides: Sampling | None = None
    max_seconds_override: float | None = Field(default=None, gt=0)
    expected: Any = None
    reference_turns: list[ReferenceTurn] = []
    sandbox: ScenarioSandbox | None = None
    world: dict[str, Any] | None = Field(default=None, description="initial mock state (harness.packs.world.WorldSpec)")
    false_premise: str | None = Field(default=None, description="a planted false claim; failing counts as sycophancy")
    request_overrides: dict[str, Any] = Field(default={}, description="BenchLocal: non-sampler request fields of "
                                                                     "sampling_overrides (e.g. tool_choice)")
    extras: dict[str, Any] = Field(default={}, description="unrecognised BenchLocal fields, kept verbatim")


class Pack(_Strict):
    """A loaded pack: its metadata, its scenarios and where they came from."""

    meta: PackMeta
    scenarios: list[Scenario]
    source: str
    warnings: list[str] = Field(default=[], description="one line each, for the CLI to print (unknown fields, ...)")


class ToolCallRecord(_Strict):
    """A tool call the model made, the turn it made it in and the mock result it got back."""

    turn: int
    name: str
    arguments: Any
    arguments_valid_json: bool = True
    result: Any = None
    error: str | None = Field(default=None, description="why the call failed (unknown tool, bad arguments, the "
                                                         "tool's own error): what the model was told")
    duration_ms: float = 0


class FileState(_Strict):
    """One entry of a workspace snapshot (text kept for small UTF-8 files, for the checks)."""

    kind: Literal["file", "dir", "symlink", "other", "unreadable"]
    mode: int = Field(ge=0, description="permission bits")
    size: int = Field(default=0, ge=0)
    sha256: str = ""
    text: str | None = None
    target: str | None = Field(default=None, description="symlink target")


class ProbeResult(_Strict):
    """A check command run after the episode (its expectations stay in the pack, on the host)."""

    assert_index: int
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False
    duration_ms: float = 0


class SandboxEvidence(_Strict):
    """What the sandbox looked like after the episode: all a sandbox verdict is computed from."""

    before: dict[str, FileState] = Field(description="/workspace after setup, before the model acted")
    after: dict[str, FileState] = Field(description="/workspace after the episode")
    probes: list[ProbeResult] = []
    status: str | None = Field(default=None, description="submit(status=...), or the single reply's kind")
    answer: str = ""
    timings_ms: dict[str, float] = Field(default={}, description="start, seed (copy + setup + snapshot), checks")


class WorldEvidence(_Strict):
    """The mock services' final state as collections of records, and every call made to them."""

    memory: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = Field(default=[], description="tool, arguments, ok; in order, submit excluded")
    status: str | None = None
    answer: str = ""


class AgentStats(_Strict):
    """How an agent episode went (per scenario; aggregated per pack as agent health)."""

    turns: int = 0
    tool_calls: int = 0
    hallucinations: int = Field(default=0, description="calls to tools that do not exist")
    schema_errors: int = Field(default=0, description="calls whose arguments do not parse or fit the schema")
    loop_detected: bool = False
    end_reason: Literal["submitted", "answered", "max_turns", "max_tokens", "wall_budget", "loop",
                        "hallucinations", "no_reply"] = "answered"
    submitted_status: str | None = None
    completion_tokens: int = 0


class Judgement(_Strict):
    """A rubric judge's verdict on one reply: who judged, what it was shown, what it said."""

    judge_model: str
    judge_endpoint: str
    judge_profile: str | None = None
    prompt: list[dict[str, Any]] = Field(description="the messages sent to the judge")
    reply: str = Field(default="", description="the judge's reply text as received")
    scores: dict[str, float] = Field(default={}, description="per criterion, 1-5 after clamping")
    clamped: list[str] = Field(default=[], description="criteria whose score was out of 1-5 and was clamped")
    reason: str = ""
    error: str | None = Field(default=None, description="why there is no score (the verdict is judge_error)")
    latency_ms: float = 0


class Reply(_Strict):
    """What the model said, as the verifiers see it (``content`` has ``<think>`` stripped)."""

    content: str = ""
    raw_content: str = ""
    reasoning: str = ""
    content_source: Literal["content", "reasoning", "none"] = "none"
    tool_calls: list[ToolCallRecord] = []
    finish_reason: str | None = None
    turns: int = 1
    sandbox: SandboxEvidence | None = None
    world: WorldEvidence | None = None
    agent: AgentStats | None = None
    judgement: Judgement | None = None


class Check(_Strict):
    """One diagnostic line of a verdict (a checklist item, a field, a checkpoint)."""

    name: str
    ok: bool
    detail: str = ""


class Verdict(_Strict):
    """A verifier's judgement: 0-100 score, the failure mode and why."""

    score: float = Field(ge=0, le=100)
    failure_mode: FailureMode
    detail: str = ""
    checks: list[Check] = []

    @property
    def status(self) -> Status:
        return status_for(self.score)


class Exchange(_Strict):
    """One HTTP round trip: the request body and the raw response body (or error).

    The scenario's own messages open every request; they are stored once, in the result's
    ``scenario``, and ``request.messages`` keeps only what followed them (a 60 MB prompt must
    not be written once per turn). ``full_request`` puts them back.
    """

    request: dict[str, Any]
    scenario_messages: int = Field(default=0, ge=0, description="leading messages taken from the scenario")
    response: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float = 0
    retries: list[dict[str, Any]] = Field(default_factory=list, description="each retry: attempt, reason, wait_s")

    def full_request(self, scenario: Scenario) -> dict[str, Any]:
        """The exact body that was sent."""
        head = [dict(m) for m in scenario.messages[: self.scenario_messages]]
        return {**self.request, "messages": head + list(self.request.get("messages") or [])}


class ScenarioResult(_Strict):
    """Everything about one scenario in one run; enough to inspect and rescore it."""

    pack_id: str
    scenario_id: str
    category: str = ""
    score: float = Field(ge=0, le=100)
    status: Status
    failure_mode: FailureMode
    detail: str = ""
    checks: list[Check] = []
    reply: Reply | None = None
    exchanges: list[Exchange] = []
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0
    budget_s: float = 0
    retries: int = Field(default=0, description="requests re-sent after server_error/endpoint_unreachable")
    thinking_requested: bool | None = Field(default=None, description="whether the requests asked for thinking")
    scenario: Scenario


class AgentHealth(_Strict):
    """Per-pack agent health: how the model behaves as an agent, beside whether it succeeded."""

    episodes: int
    mean_turns_to_solve: float | None = Field(description="over passed scenarios")
    tool_calls: int
    hallucination_rate: float | None = Field(description="calls to unknown tools / all tool calls (None: no calls)")
    schema_error_rate: float | None = Field(description="calls with malformed arguments / all tool calls")
    loop_detections: int
    refusals_of_safe_tasks: int = Field(description="submitted unsafe/impossible where the task was doable")
    false_premises: int = Field(default=0, description="scenarios with a planted false claim that were answered")
    sycophancy_rate: float | None = Field(default=None, description="of those, the share failed (went along "
                                                                    "with the false claim)")
    mean_sandbox_overhead_ms: float | None = Field(description="container start + copy + setup + checks + remove")


ThinkingValidity = Literal["valid", "silent", "contaminated", "not_requested"]


class ThinkingHealth(_Strict):
    """How thinking went over a pack's (or a run's) answered replies."""

    requested: bool
    replies: int = Field(description="answered replies (infrastructure failures left out)")
    with_thinking: int = Field(description="replies with reasoning (a reasoning field or a <think> block)")
    cap_hits: int = Field(description="cut by the token budget while still thinking (finish_reason length, "
                                      "no answer after the thinking)")
    cap_hit_rate: float | None
    silent: int = Field(description="thinking requested, none produced")
    contaminated: int = Field(description="reasoning leaked into the answer (<think> tags or a reasoning preamble)")
    validity: ThinkingValidity


class TemplateConsistency(_Strict):
    """Templated packs: whether instances of one template (other numbers, other names) agree."""

    templates: int
    consistent: int = Field(description="templates whose instances all passed or all failed")
    all_passed: int
    per_template: dict[str, list[bool]] = Field(description="template -> passed, per instance")


class UnavailablePack(_Strict):
    """A selected pack whose data is not on this machine: reported, not an error."""

    pack_id: str
    status: Literal["dataset-unavailable"] = "dataset-unavailable"
    reason: str
    how_to_enable: str


class PackResult(_Strict):
    """One pack's aggregate and its scenarios."""

    pack_id: str
    version: str
    source: str
    format: str
    passed: int
    partial: int
    total: int
    mean_score: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    infra_failures: int
    failure_counts: dict[str, int]
    agent_health: AgentHealth | None = None
    thinking: ThinkingHealth | None = None
    consistency: TemplateConsistency | None = None
    ignored_fields: list[str] = Field(default=[], description="pack-file fields kept but not acted on (BenchLocal)")
    scenarios: list[ScenarioResult]

    @model_validator(mode="after")
    def _totals_match_scenarios(self) -> PackResult:
        """Stored totals are a cache of the scenarios; a file where they disagree was edited or damaged."""
        scored = [s for s in self.scenarios if s.failure_mode != NOT_SCORED]
        counted = {"total": len(scored), "passed": sum(s.status == "pass" for s in scored),
                   "partial": sum(s.status == "partial" for s in scored)}
        for name, value in counted.items():
            if getattr(self, name) != value:
                raise ValueError(f"pack {self.pack_id}: {name} says {getattr(self, name)} but its scenarios "
                                 f"count {value}")
        return self


class SamplingProvenance(_Strict):
    canonical: bool
    source: SamplingSource
    params: Sampling


class ThinkingState(_Strict):
    requested: bool | None = Field(description="None: pack default used per pack")
    control: Literal["chat_template_kwargs", "reasoning_effort", "anthropic", "none"]
    budget_tokens: int | None = None


class TimeoutPolicy(_Strict):
    measured_tps: float | None
    override_s: float | None = None
    formula: str = "base_s * max(1, reference_tps / measured_tps) * max(1, max_tokens / baseline_max_tokens)"


class CalibrationItem(_Strict):
    """The judge's score for one graded reference answer."""

    pack_id: str
    scenario_id: str
    grade: Literal["strong", "weak"]
    judged_mean: float | None = Field(description="mean criterion score 1-5; None when the judge failed")
    error: str | None = None


class Calibration(_Strict):
    """How well a judge separates each rubric's strong reference from its weak one."""

    items: list[CalibrationItem]
    tasks: int = Field(description="scenarios with both a strong and a weak reference judged")
    separated: int = Field(description="of those, how many scored strong above weak")
    agreement: float | None = Field(description="separated / tasks")
    rank_correlation: float | None = Field(description="Spearman between grade (strong > weak) and judged mean")
    errors: int = 0


class JudgeInfo(_Strict):
    """Which judge scored the run's rubric scenarios, and its calibration on the references."""

    model: str
    endpoint: str
    profile: str | None = None
    calibration: Calibration | None = None


class RunResult(_Strict):
    """The self-contained record of one packs run (schema-versioned)."""

    schema_version: Literal[1] = RESULT_SCHEMA_VERSION
    kind: Literal["packs"] = "packs"
    run_id: str
    started_at: str
    finished_at: str
    harness_version: str
    endpoint: str
    model: str
    profile: str | None = None
    mode: str
    server_slots: int | None = None
    concurrency: int
    sampling: SamplingProvenance
    thinking: ThinkingState
    timeouts: TimeoutPolicy
    complete: bool = Field(description="every selected scenario has a result")
    packs: list[PackResult]
    judge: JudgeInfo | None = None
    notes: list[str] = Field(default=[], description="what the run left out and why (e.g. no --judge)")
    thinking_validity: ThinkingValidity | None = Field(default=None, description="over every answered reply")
    unavailable: list[UnavailablePack] = Field(default=[], description="selected packs without data here")
    rescored: list[dict[str, Any]] = []
