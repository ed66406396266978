"""Check a sandboxed pack's scenarios against the real agent sandbox, without a model.

For every scenario: the reference answer (its reference_turns, replayed in order) must pass;
an empty answer must fail; for single-reply packs, answering with the unchanged original file
must fail too (except where the pack expects no change). Rubric scenarios are checked on their
deterministic gates only (no judge here). With ``--cheats FILE`` (``{"<id>": {"turns": [...],
"caught_by": ["check name", ...]}}``) each cheating answer must fail, on those checks. Prints
one line per problem and exits 1 when there is any. Needs the sandbox image (`make sandboxes`).

    python scripts/check_sandbox_pack.py packs/cli-40 [--scenario ID ...] [--cheats FILE] [-v]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.packs.agent import apply_single_reply, run_episode
from harness.packs.loader import load_pack_dir
from harness.packs.sandbox import AgentSandbox, pack_folder, require_agent_image
from harness.packs.schema import Pack, ReferenceTurn, Reply, Scenario, Verdict
from harness.packs.verifiers import judge
from harness.packs.verifiers import rubric as rubric_verifier


def _reference_reply(turn_index: list[int], turns: list[ReferenceTurn]):
    """A `send` for run_episode that replays the given turns whatever the tools said."""
    from harness.endpoint.replies import ChatReply, Usage

    def send(messages: list[dict]) -> ChatReply | None:
        if turn_index[0] >= len(turns):
            return None
        turn = turns[turn_index[0]]
        turn_index[0] += 1
        calls = [{"id": f"ref_{turn_index[0]}_{i}", "type": "function",
                  "function": {"name": c.name, "arguments": c.arguments}} for i, c in enumerate(turn.tool_calls)]
        return ChatReply(content=turn.content, raw_content=turn.content, reasoning="", content_source="content",
                         tool_calls=calls, finish_reason="tool_calls" if calls else "stop", usage=Usage(),
                         timings=None, body={}, latency_ms=0)
    return send


def _judged(scenario: Scenario, reply: Reply) -> Verdict:
    """The verdict; a rubric scenario's on its gates alone (the judge is not part of this check)."""
    if scenario.verifier.type != "rubric":
        return judge(scenario, reply)
    gates = rubric_verifier.gate_checks(rubric_verifier.Spec.model_validate(scenario.verifier.model_dump()),
                                        reply.sandbox)
    ok = bool(gates) and all(c.ok for c in gates)
    return Verdict(score=100 if ok else 0, failure_mode="passed" if ok else "verifier_fail",
                   detail="gates only (no judge)", checks=gates)


def attempt(pack: Pack, scenario: Scenario, kind: str, cheat: list[ReferenceTurn] | None = None) -> Verdict:
    """Judge one scripted answer ("reference", "empty", "original" or "cheat") in a fresh sandbox."""
    settings = pack.meta.sandbox
    assert settings is not None and scenario.sandbox is not None
    asserts = [dict(a) for a in scenario.verifier.asserts]
    with AgentSandbox(pack, scenario) as box:
        if settings.mode == "agent":
            turns = scenario.reference_turns if kind == "reference" else cheat or []
            send = _reference_reply([0], turns) if turns else (lambda messages: None)
            episode = run_episode(send, box, settings, [])
            evidence = box.finish(asserts, status=episode.status, answer=episode.answer)
            reply = Reply(content=episode.answer, tool_calls=episode.calls, sandbox=evidence, agent=episode.stats,
                          turns=max(1, episode.stats.turns))
        else:
            if kind == "reference":
                content = scenario.reference_turns[0].content if scenario.reference_turns else ""
            elif kind == "original":
                path = scenario.sandbox.solution_path or ""
                original = pack_folder(pack, "fixtures", scenario.sandbox.fixture or "") / path
                content = f"Here is the file.\n\n```\n{original.read_text()}```\n"
            else:
                content = ""
            status = apply_single_reply(box, scenario.sandbox.solution_path, content)
            evidence = box.finish(asserts, status=status, answer=content)
            reply = Reply(content=content, sandbox=evidence)
    return _judged(scenario, reply)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", type=Path, help="the pack folder, e.g. packs/cli-40")
    parser.add_argument("--scenario", action="append", default=[], help="only these scenario ids")
    parser.add_argument("--cheats", type=Path, help="JSON of cheating answers that must be caught")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check of every attempt")
    args = parser.parse_args()
    try:
        pack = load_pack_dir(args.pack)
        if pack.meta.sandbox is None:
            print(f"{args.pack}: pack.json has no sandbox section", file=sys.stderr)
            return 2
        require_agent_image()
        cheats = json.loads(args.cheats.read_text(encoding="utf-8")) if args.cheats else {}
        problems = 0
        for scenario in pack.scenarios:
            if args.scenario and scenario.id not in args.scenario:
                continue
            kinds = ["reference", "empty"]
            expects_change = not any(a.get("check") == "submitted" and a.get("status") == "no_change"
                                     for a in scenario.verifier.asserts)
            if pack.meta.sandbox.mode == "single_reply" and expects_change:
                kinds.append("original")
            for kind in kinds:
                verdict = attempt(pack, scenario, kind)
                wrong = (verdict.failure_mode == "passed") != (kind == "reference")
                problems += wrong
                if wrong or args.verbose:
                    mark = "PROBLEM" if wrong else "ok"
                    print(f"{mark} {scenario.id} [{kind}] score {verdict.score:g} {verdict.failure_mode}: "
                          f"{verdict.detail}")
                    for check in verdict.checks if (args.verbose or wrong) else []:
                        print(f"    {'✓' if check.ok else '✗'} {check.name} {check.detail}")
            if scenario.id in cheats:
                cheat = cheats[scenario.id]
                verdict = attempt(pack, scenario, "cheat", [ReferenceTurn.model_validate(t) for t in cheat["turns"]])
                failed = [c.name for c in verdict.checks if not c.ok]
                missed = [name for name in cheat["caught_by"] if not any(name in f for f in failed)]
                wrong = verdict.failure_mode == "passed" or bool(missed)
                problems += wrong
                if wrong or args.verbose:
                    print(f"{'PROBLEM' if wrong else 'ok'} {scenario.id} [cheat] score {verdict.score:g} "
                          f"{verdict.failure_mode}; failed: {', '.join(failed) or 'nothing'}"
                          + (f"; not caught by: {', '.join(missed)}" if missed else ""))
        unknown = sorted(set(cheats) - {s.id for s in pack.scenarios})
        for scenario_id in unknown:
            print(f"PROBLEM cheats name an unknown scenario {scenario_id}")
        problems += len(unknown)
        print(f"{args.pack}: {problems} problem(s)")
        return 1 if problems else 0
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
