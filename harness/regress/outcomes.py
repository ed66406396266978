"""Adapters from result files to OutcomeSets, the input of diff and baselines.

A packs result becomes one outcome per scenario (passed = status "pass"), keyed by pack and
scenario id; the run's sampling provenance decides whether it may gate.
"""

from __future__ import annotations

from harness.regress.compare import OutcomeSet, ScenarioOutcome
from harness.packs.schema import RunResult


def thinking_mode(run: RunResult) -> str:
    """on / off as requested, default when each pack's own default was used."""
    requested = run.thinking.requested
    return "default" if requested is None else ("on" if requested else "off")


def outcomes_from_packs(run: RunResult, label: str | None = None) -> OutcomeSet:
    """One repeat: every scenario of every pack, passed when it scored a pass."""
    outcomes = [ScenarioOutcome(pack_id=pack.pack_id, scenario_id=scenario.scenario_id,
                                passes=[scenario.status == "pass"])
                for pack in run.packs for scenario in pack.scenarios]
    return OutcomeSet(label=label or f"{run.profile or run.model}@{run.run_id}", canonical=run.sampling.canonical,
                      thinking_mode=thinking_mode(run), repeats=1, outcomes=outcomes,
                      pack_scores={pack.pack_id: pack.mean_score for pack in run.packs},
                      pack_versions={pack.pack_id: pack.version for pack in run.packs})
