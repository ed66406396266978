"""Baselines: an n≥3 aggregate of repeated runs that later runs are checked against.

A baseline lives at ``<results>/baselines/<profile>__<thinking-mode>.json`` and is meant to
be committed. It keeps every repeat's verdict per scenario (so the pass count and the
majority verdict can be re-derived) and is checked with the same paired test as ``diff``.
Repeats matter because even greedy decoding is not bit-stable across batch sizes and
builds; a single run's pass/fail on a borderline scenario is not a reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

from harness.errors import ComparisonError, describe_validation_error
from harness.files import write_text_atomic
from harness.regress.compare import DEFAULT_ALPHA, DEFAULT_MARGIN_POINTS, Comparison, compare
from harness.regress.outcomes import OutcomeSet, ScenarioOutcome, read_json_file
from harness.stats import majority_vote

BASELINE_SCHEMA_VERSION: Final = 1
MIN_BASELINE_RUNS = 3
BASELINES_SUBDIR = "baselines"


class BaselineScenario(BaseModel):
    """One scenario across all baseline repeats."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # pass_count/majority_passed are re-derived

    pack_id: str
    scenario_id: str
    passes: list[bool] = Field(min_length=1, description="verdict of every repeat, in order")

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom, unsupported by mypy
    @property
    def pass_count(self) -> int:
        return sum(self.passes)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented idiom, unsupported by mypy
    @property
    def majority_passed(self) -> bool:
        return majority_vote(self.passes)


class Baseline(BaseModel):
    """The aggregate a profile's later runs are checked against."""

    model_config = ConfigDict(extra="ignore")  # computed fields come back on load

    kind: Literal["baseline"] = "baseline"
    schema_version: Literal[1] = BASELINE_SCHEMA_VERSION
    profile: str
    thinking_mode: str
    canonical: bool
    runs: int = Field(ge=1, description="repeats aggregated per scenario")
    sources: list[str] = Field(description="labels of the outcome sets it was built from")
    scenarios: list[BaselineScenario]
    pack_scores: dict[str, float] = Field(default_factory=dict, description="mean over repeats")
    pack_versions: dict[str, str] = Field(default_factory=dict)

    def as_outcome_set(self) -> OutcomeSet:
        """The baseline as an OutcomeSet, so it compares exactly like any run."""
        return OutcomeSet(label=f"baseline {self.profile}__{self.thinking_mode} (n={self.runs})",
                          canonical=self.canonical, thinking_mode=self.thinking_mode, repeats=self.runs,
                          outcomes=[ScenarioOutcome(pack_id=s.pack_id, scenario_id=s.scenario_id, passes=s.passes)
                                    for s in self.scenarios],
                          pack_scores=self.pack_scores, pack_versions=self.pack_versions)


def baseline_path(results_dir: Path, profile_id: str, thinking_mode: str) -> Path:
    """Where the baseline of a profile in a thinking mode is stored."""
    return results_dir / BASELINES_SUBDIR / f"{profile_id}__{thinking_mode}.json"


def build_baseline(profile_id: str, thinking_mode: str, runs: Sequence[OutcomeSet],
                   min_runs: int = MIN_BASELINE_RUNS) -> Baseline:
    """Aggregate repeated runs of the same scenarios into a baseline; at least min_runs repeats."""
    if not runs:
        raise ComparisonError("a baseline needs at least one outcome set")
    total = sum(run.repeats for run in runs)
    if total < min_runs:
        raise ComparisonError(f"a baseline needs at least {min_runs} repeats, got {total} "
                              f"(from {', '.join(run.label for run in runs)})")
    reference = runs[0]
    keys = [o.key for o in reference.outcomes]
    for run in runs:
        if run.thinking_mode != thinking_mode:
            raise ComparisonError(f"{run.label}: thinking mode {run.thinking_mode!r}, "
                                  f"baseline is for {thinking_mode!r}")
        missing = set(keys) ^ {o.key for o in run.outcomes}
        if missing:
            pack, sid = sorted(missing)[0]
            raise ComparisonError(f"{run.label}: scenario set differs from {reference.label} "
                                  f"(e.g. {pack}/{sid}); a baseline needs the same scenarios in every run")
        for pack, version in run.pack_versions.items():
            if reference.pack_versions.get(pack, version) != version:
                raise ComparisonError(f"{run.label}: pack {pack} version {version} differs from "
                                      f"{reference.pack_versions[pack]} in {reference.label}")
    passes: dict[tuple[str, str], list[bool]] = {key: [] for key in keys}
    for run in runs:
        for outcome in run.outcomes:
            passes[outcome.key].extend(outcome.passes)
    return Baseline(profile=profile_id, thinking_mode=thinking_mode, canonical=all(r.canonical for r in runs),
                    runs=total, sources=[run.label for run in runs],
                    scenarios=[BaselineScenario(pack_id=k[0], scenario_id=k[1], passes=passes[k]) for k in keys],
                    pack_scores=_mean_pack_scores(runs),
                    pack_versions={p: v for run in runs for p, v in run.pack_versions.items()})


def _mean_pack_scores(runs: Sequence[OutcomeSet]) -> dict[str, float]:
    """Repeat-weighted mean of each pack's score over the runs that report it."""
    sums: dict[str, float] = {}
    weights: dict[str, int] = {}
    for run in runs:
        for pack, score in run.pack_scores.items():
            sums[pack] = sums.get(pack, 0.0) + score * run.repeats
            weights[pack] = weights.get(pack, 0) + run.repeats
    return {pack: sums[pack] / weights[pack] for pack in sorted(sums)}


def write_baseline(baseline: Baseline, path: Path) -> Path:
    """Write a baseline atomically."""
    return write_text_atomic(path, baseline.model_dump_json(indent=2) + "\n")


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; errors name the file and the field."""
    data = read_json_file(path, "no baseline (capture one with `baseline capture`)")
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        raise ComparisonError(f"{path}: {describe_validation_error(exc)}") from None


def check_against_baseline(baseline: Baseline, fresh: OutcomeSet, alpha: float = DEFAULT_ALPHA,
                           margin_points: float = DEFAULT_MARGIN_POINTS) -> Comparison:
    """Compare a fresh run (B) against the baseline (A), scenario by scenario, with equivalence within ±margin."""
    return compare(baseline.as_outcome_set(), fresh, alpha, margin_points)
