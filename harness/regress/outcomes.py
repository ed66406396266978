"""OutcomeSets, the input of diff and baselines, and the adapters that make them from files.

An OutcomeSet is plain typed data — which scenarios passed in each repeat, plus per-pack
scores. ``load_outcome_set`` is the one place that turns a file into one: a packs result
becomes one outcome per scenario (passed = status "pass"), keyed by pack and scenario id; the
run's sampling provenance decides whether it may gate. A benchlocal-cli result file (the JSON
``benchlocal-cli run`` saved) is read by ``outcomes_from_benchlocal``, so old runs compare with
new ones on the same pack and scenario ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import ComparisonError, describe_validation_error
from harness.files import parse_json, read_text
from harness.packs.schema import NOT_SCORED, RunResult
from harness.stats import majority_vote

OUTCOME_SCHEMA_VERSION: Final = 1
ScenarioKey = tuple[str, str]  # (pack_id, scenario_id)


class ScenarioOutcome(BaseModel):
    """One scenario's verdicts, one per repeat, in repeat order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pack_id: str = Field(min_length=1)
    scenario_id: str = Field(min_length=1)
    passes: list[bool] = Field(min_length=1)

    @property
    def key(self) -> ScenarioKey:
        return self.pack_id, self.scenario_id

    @property
    def passed(self) -> bool:
        """The scenario's verdict: strict majority over the repeats."""
        return majority_vote(self.passes)


class OutcomeSet(BaseModel):
    """Which scenarios passed in one run (of one or more repeats) — the input of every comparison."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["outcome-set"] = "outcome-set"
    schema_version: Literal[1] = OUTCOME_SCHEMA_VERSION
    label: str = Field(min_length=1, description="what this run is, e.g. profile@run-id")
    canonical: bool = Field(description="sampling controlled by the harness (greedy); only canonical runs gate")
    thinking_mode: str = Field(default="default", description="on / off / default, as the run was made")
    repeats: int = Field(ge=1, description="how many times every scenario was run")
    outcomes: list[ScenarioOutcome]
    pack_scores: dict[str, float] = Field(default_factory=dict, description="pack id -> mean score 0-100")
    pack_versions: dict[str, str] = Field(default_factory=dict, description="pack id -> pack version")

    @model_validator(mode="after")
    def _consistent(self) -> OutcomeSet:
        seen: set[ScenarioKey] = set()
        for outcome in self.outcomes:
            if outcome.key in seen:
                raise ValueError(f"scenario {outcome.pack_id}/{outcome.scenario_id} listed twice")
            seen.add(outcome.key)
            if len(outcome.passes) != self.repeats:
                raise ValueError(f"scenario {outcome.pack_id}/{outcome.scenario_id} has {len(outcome.passes)} "
                                 f"verdicts but repeats is {self.repeats}")
        return self

    def verdicts(self) -> dict[ScenarioKey, bool]:
        """Majority verdict per scenario."""
        return {outcome.key: outcome.passed for outcome in self.outcomes}



def thinking_mode(run: RunResult) -> str:
    """on / off as requested, default when each pack's own default was used."""
    requested = run.thinking.requested
    return "default" if requested is None else ("on" if requested else "off")


def outcomes_from_packs(run: RunResult, label: str | None = None) -> OutcomeSet:
    """One repeat: every scenario of every pack, passed when it scored a pass."""
    outcomes = [ScenarioOutcome(pack_id=pack.pack_id, scenario_id=scenario.scenario_id,
                                passes=[scenario.status == "pass"])
                for pack in run.packs for scenario in pack.scenarios if scenario.failure_mode != NOT_SCORED]
    return OutcomeSet(label=label or f"{run.profile or run.model}@{run.run_id}", canonical=run.sampling.canonical,
                      thinking_mode=thinking_mode(run), repeats=1, outcomes=outcomes,
                      pack_scores={pack.pack_id: pack.mean_score for pack in run.packs},
                      pack_versions={pack.pack_id: pack.version for pack in run.packs})


class _UpstreamScenario(BaseModel):
    """One scenario run in a benchlocal-cli result (only what a comparison needs)."""

    id: str = Field(min_length=1)
    passed: bool
    failure_mode: str = ""
    repeat_index: int = Field(default=1, ge=1)


class _UpstreamPack(BaseModel):
    pack_id: str = Field(min_length=1)
    version: str = ""
    skipped: bool = False
    score: float = Field(default=0.0, ge=0, le=1, description="passed / total, a fraction")
    scenarios: list[_UpstreamScenario] = []


class _UpstreamRun(BaseModel):
    runner_version: str
    model: str = "unknown"
    started_at: str = ""
    thinking_mode: str = "pack-defaults"
    sampling_overrides: dict[str, Any] | None = None
    sampling_source: str | None = None
    packs: list[_UpstreamPack]


def is_benchlocal_result(data: Any) -> bool:
    """A benchlocal-cli result: runner_version and packs, and none of our ``kind`` tags."""
    return isinstance(data, dict) and "kind" not in data and "runner_version" in data and "packs" in data


def outcomes_from_benchlocal(data: dict[str, Any], label: str | None = None) -> OutcomeSet:
    """A benchlocal-cli result as an OutcomeSet: repeats become verdict lists, skipped packs and
    ``verifier_not_implemented`` scenarios are left out (upstream did not score them either), and
    a run with sampling overrides or server sampling is not canonical. Repeated ids (upstream
    gsm-symbolic-30) get the ``#2`` suffixes our importer gives them."""
    run = _UpstreamRun.model_validate(data)
    passes: dict[ScenarioKey, list[bool]] = {}
    repeats = 1
    for pack in run.packs:
        if pack.skipped:
            continue
        occurrences: dict[tuple[str, int], int] = {}
        for scenario in pack.scenarios:
            if scenario.failure_mode == NOT_SCORED:
                continue
            nth = occurrences[(scenario.id, scenario.repeat_index)] = \
                occurrences.get((scenario.id, scenario.repeat_index), 0) + 1
            scenario_id = scenario.id if nth == 1 else f"{scenario.id}#{nth}"
            passes.setdefault((pack.pack_id, scenario_id), []).append(scenario.passed)
            repeats = max(repeats, scenario.repeat_index)
    uneven = [f"{p}/{s}" for (p, s), verdicts in passes.items() if len(verdicts) != repeats]
    if uneven:
        raise ComparisonError(f"scenario {uneven[0]} has fewer verdicts than the run's {repeats} repeats")
    thinking = {"force-on": "on", "force-off": "off"}.get(run.thinking_mode, "default")
    return OutcomeSet(label=label or f"{run.model}@benchlocal-cli {run.runner_version} {run.started_at}".strip(),
                      canonical=run.sampling_overrides is None and run.sampling_source != "server",
                      thinking_mode=thinking, repeats=repeats,
                      outcomes=[ScenarioOutcome(pack_id=p, scenario_id=s, passes=v) for (p, s), v in passes.items()],
                      pack_scores={p.pack_id: round(100 * p.score, 2) for p in run.packs if not p.skipped},
                      pack_versions={p.pack_id: p.version for p in run.packs if not p.skipped})


def read_json_file(path: Path, missing: str = "file not found") -> Any:
    """A JSON document, or a ComparisonError naming the file (`missing` says what to do if absent)."""
    try:
        return parse_json(read_text(path))
    except FileNotFoundError:
        raise ComparisonError(f"{path}: {missing}") from None
    except (OSError, ValueError) as exc:
        raise ComparisonError(f"{path}: not readable JSON ({exc})") from None


def load_outcome_set(path: Path) -> OutcomeSet:
    """Read an OutcomeSet JSON file, or a packs result file through its adapter.

    Errors name the file and the field.
    """
    data = read_json_file(path)
    try:
        if isinstance(data, dict) and data.get("kind") == "packs":
            return outcomes_from_packs(RunResult.model_validate(data))
        if is_benchlocal_result(data):
            try:
                return outcomes_from_benchlocal(data)
            except ComparisonError as exc:
                raise ComparisonError(f"{path}: {exc}") from None
        if not isinstance(data, dict) or data.get("kind", "outcome-set") != "outcome-set":
            kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise ComparisonError(f"{path}: not an outcome set or packs result (kind {kind!r}); "
                                  "no adapter for this result format")
        return OutcomeSet.model_validate(data)
    except ValidationError as exc:
        raise ComparisonError(f"{path}: {describe_validation_error(exc)}") from None
