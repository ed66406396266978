"""What a report shows, as typed data: filled from result files, rendered by templates.

Keeping this view-model apart from the result formats means templates never dig through
raw JSON, and a result format change touches one adapter (``build.py``) only.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class Interval(BaseModel):
    """A proportion with its Wilson 95% interval, all in percent."""

    k: int
    n: int
    pct: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.pct:.1f}% [{self.low:.1f}–{self.high:.1f}]"


class PackRow(BaseModel):
    pack: str
    version: str
    passed: Interval
    mean_score: float
    p50_s: float | None = None
    p95_s: float | None = None
    status: str = ""
    judged: int = 0  # scenarios scored by a rubric judge (an LLM's opinion, not a check)


class AgentHealthRow(BaseModel):
    """How the model behaved as an agent in one sandboxed pack (beside whether it succeeded)."""

    pack: str
    episodes: int
    mean_turns_to_solve: float | None = None
    hallucination_rate: float | None = None  # None: no tool calls (single-reply packs)
    schema_error_rate: float | None = None
    loop_detections: int = 0
    refusals_of_safe_tasks: int = 0
    false_premises: int = 0
    sycophancy_rate: float | None = None  # share of false-premise scenarios failed
    sandbox_overhead_s: float | None = None


class AgenticRow(BaseModel):
    """One profile's agentic pack, for comparing local and API models side by side."""

    profile: str
    pack: str
    passed: Interval
    mean_score: float
    turn_s: float | None = None  # mean seconds per model request (turn)
    ttft_ms: float | None = None  # from the profile's throughput step
    tokens_per_scenario: float | None = None
    cost_usd: float | None = None  # only where the profile gives prices


class EvalRow(BaseModel):
    dataset: str  # EvalPlus dataset name: humaneval, humaneval-mini, mbpp, ...
    label: str = ""  # as shown: HumanEval+, HumanEval+ Mini, ...
    tasks: int
    base: Interval
    plus: Interval
    empty: int = 0
    truncated: int = 0
    recovered: int = 0
    min_time_limit_s: float | None = None


class ThroughputView(BaseModel):
    ttft_ms: float | None = None
    decode_tps: float | None = None
    wall_tps: float | None = None
    pp_tps: dict[str, float | None] = Field(default_factory=dict)  # prompt length label -> tokens/s
    concurrency_tps: dict[str, float | None] = Field(default_factory=dict)  # streams -> aggregate tokens/s
    early_stops: int = 0
    runs: int = 0
    load_s: float | None = None
    vram_peak_mib: float | None = None
    vram_note: str = ""
    notes: list[str] = Field(default_factory=list)  # e.g. measured over the network, clamped lengths
    spreads: dict[str, str] = Field(default_factory=dict)  # measure -> "median (min–max)", UNSTABLE marked
    unstable: list[str] = Field(default_factory=list)  # measures whose runs disagree beyond the margin
    gpu: list[str] = Field(default_factory=list)  # GPU telemetry lines (power, J/token, clocks, throttling)


class TableView(BaseModel):
    """A table as cells, laid out by both templates (markdown and HTML)."""

    headers: list[str]
    rows: list[list[str]] = Field(default_factory=list)


class ChartSeries(BaseModel):
    label: str
    points: list[tuple[float, float]] = Field(default_factory=list)  # (x, y) in data units


class LineChartView(BaseModel):
    """A line chart as data (sweep: throughput against latency; soak: figures over time)."""

    chart_id: str
    title: str
    x_label: str
    y_label: str
    series: list[ChartSeries] = Field(default_factory=list)


class NeedleCellView(BaseModel):
    depth_pct: float
    fill_pct: float
    passed: bool
    latency_s: float | None = None
    prompt_tokens: int | None = None
    error: str = ""


class LayerView(BaseModel):
    """One server layer of a profile (stress, sweep, soak) as the report shows it: lines, a table, charts."""

    lines: list[str] = Field(default_factory=list)  # the headline facts, one sentence each
    table: TableView | None = None
    charts: list[LineChartView] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class VerifyRow(BaseModel):
    """One verify check as the report lists it."""

    kind: str  # server | capability
    check: str
    passed: bool
    detail: str = ""


class StressView(LayerView):
    depths: list[float] = Field(default_factory=list)
    fills: list[float] = Field(default_factory=list)
    cells: list[NeedleCellView] = Field(default_factory=list)
    probes: list[VerifyRow] = Field(default_factory=list)
    log_tail: list[str] = Field(default_factory=list)  # the server's last lines when it died


NOT_RECORDED = "not recorded"


class Excerpt(BaseModel):
    """A text as the report shows it: cut at a limit, with the length of the whole."""

    text: str = ""
    chars: int = 0  # the whole text's length; more than len(text) when cut

    @property
    def cut(self) -> bool:
        return self.chars > len(self.text)


class CheckView(BaseModel):
    name: str
    ok: bool
    detail: Excerpt = Field(default_factory=Excerpt)


class ToolCallView(BaseModel):
    turn: int
    name: str
    arguments: Excerpt
    outcome: Excerpt  # the mock result, or the error the model was told
    failed: bool = False


class ScenarioView(BaseModel):
    """One scenario as the HTML drill-down shows it: prompt, reply, verdict, cost."""

    scenario_id: str
    anchor: str  # the element id that opens it: report.html#<anchor>
    category: str = ""
    status: str  # pass | partial | fail
    score: float
    failure_mode: str
    detail: Excerpt = Field(default_factory=Excerpt)
    checks: list[CheckView] = Field(default_factory=list)
    prompt: list[tuple[str, Excerpt]] = Field(default_factory=list)  # (role, text) of the scenario's messages
    tools_offered: list[str] = Field(default_factory=list)
    content: Excerpt = Field(default_factory=Excerpt)
    content_source: str = ""
    reasoning: Excerpt = Field(default_factory=Excerpt)
    finish_reason: str = ""
    tool_calls: list[ToolCallView] = Field(default_factory=list)
    tool_calls_left_out: int = 0
    agent_line: str = ""
    judge_line: str = ""
    errors: list[Excerpt] = Field(default_factory=list)  # request errors (no reply, or retried)
    latency_s: float = 0.0
    budget_s: float = 0.0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class PackScenarios(BaseModel):
    pack: str
    scenarios: list[ScenarioView] = Field(default_factory=list)

    @property
    def not_passed(self) -> int:
        return sum(s.status != "pass" for s in self.scenarios)


class ProfileReport(BaseModel):
    profile: str
    name: str = ""
    rig: str = "local"  # where its server ran (the manifest's record; "local" in runs from before rigs)
    label: str = ""  # how cross-profile figures name it: the profile, "profile @ rig" when the run used several
    status: str
    reason: str = ""
    steps: list[tuple[str, str, float | None, str]] = Field(default_factory=list)  # name, status, seconds, detail
    provenance: dict[str, str] = Field(default_factory=dict)  # from the manifest's record, never today's config
    verify: list[VerifyRow] = Field(default_factory=list)
    verify_full: list[VerifyRow] = Field(default_factory=list)
    stress: StressView | None = None
    throughput: ThroughputView | None = None
    sweep: LayerView | None = None
    soak: LayerView | None = None
    packs: list[PackRow] = Field(default_factory=list)
    failure_breakdown: dict[str, int] = Field(default_factory=dict)
    agent_health: list[AgentHealthRow] = Field(default_factory=list)
    agentic: list[AgenticRow] = Field(default_factory=list)
    pack_notes: list[str] = Field(default_factory=list)  # what the packs run left out and why
    judge_line: str = ""  # who judged the rubric scenarios and how well it separates graded references
    quality_line: str = ""
    evalplus: list[EvalRow] = Field(default_factory=list)
    scenarios: list[PackScenarios] = Field(default_factory=list)  # the HTML drill-down, per pack

    @model_validator(mode="after")
    def _label_defaults_to_the_profile(self) -> ProfileReport:
        self.label = self.label or self.profile
        return self


class ReferenceRow(BaseModel):
    model: str
    humaneval_plus: float | None = None
    mbpp_plus: float | None = None
    source: str = ""


class TradeoffPoint(BaseModel):
    """One profile on one rig: its pass rate over every pack scenario it ran, against its decode speed."""

    profile: str
    rig: str
    label: str
    passed: Interval
    decode_tps: float
    frontier: bool = False  # no other point is at least as good on both axes and better on one


class Tradeoff(BaseModel):
    points: list[TradeoffPoint] = Field(default_factory=list)
    not_plotted: list[tuple[str, str]] = Field(default_factory=list)  # (label, why)
    notes: list[str] = Field(default_factory=list)


class RigRow(BaseModel):
    """One rig's fingerprint as the Rigs table shows it."""

    rig: str
    endpoint: str = ""
    engine: str = NOT_RECORDED
    system: str = NOT_RECORDED  # OS and kernel
    cpus: str = NOT_RECORDED
    memory: str = NOT_RECORDED
    gpus: str = NOT_RECORDED
    state: str = ""  # reachable, or unreachable and why
    profiles: list[str] = Field(default_factory=list)


class Report(BaseModel):
    title: str = "benchwright report"
    generated_at: str
    run_id: str
    # What ran, from the manifest's run record ("not recorded" for runs from before such records)
    harness_version: str = NOT_RECORDED
    git_commit: str = NOT_RECORDED
    python_version: str = NOT_RECORDED
    hostname: str = NOT_RECORDED
    started_at: str = ""
    resumed_at: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    wall_seconds: float | None = None
    overlap_seconds: float | None = None
    pipelined: bool = True
    profiles: list[ProfileReport]
    references: list[ReferenceRow] = Field(default_factory=list)
    reference_note: str = ""
    tradeoff: Tradeoff = Field(default_factory=Tradeoff)
    rigs: list[RigRow] = Field(default_factory=list)
    rigs_note: str = ""  # one line when the run recorded no rig fingerprints
