"""Re-judging saved replies with the current verifiers and recomputing every aggregate.

Scenario definitions come from the result file itself (the request that was sent is what the
reply answers). Results without a reply (infrastructure failures) are kept as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime

from harness import __version__
from harness.packs.codejudge import DEFERRED_VERIFIERS
from harness.packs.runner import aggregate
from harness.packs.schema import RunResult, ScenarioResult, status_for
from harness.packs.verifiers import judge


def rescore(result: RunResult) -> tuple[RunResult, list[tuple[ScenarioResult, ScenarioResult]]]:
    """(the rescored result, [(old, new)] for every scenario whose verdict changed)."""
    changed: list[tuple[ScenarioResult, ScenarioResult]] = []
    packs = []
    for pack in result.packs:
        scenarios = []
        for old in pack.scenarios:
            if old.reply is None or old.scenario.verifier.type in DEFERRED_VERIFIERS:  # sandbox-judged: kept
                scenarios.append(old)
                continue
            verdict = judge(old.scenario, old.reply)
            new = old.model_copy(update={"score": verdict.score, "status": status_for(verdict.score),
                                         "failure_mode": verdict.failure_mode, "detail": verdict.detail,
                                         "checks": verdict.checks})
            if (new.score, new.failure_mode) != (old.score, old.failure_mode):
                changed.append((old, new))
            scenarios.append(new)
        packs.append(aggregate(pack.pack_id, pack.version, pack.source, pack.format, scenarios))
    note = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "harness_version": __version__,
            "changed": len(changed)}
    return result.model_copy(update={"packs": packs, "rescored": [*result.rescored, note]}), changed
