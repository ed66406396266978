"""Check a sandboxed pack's scenarios against the real agent sandbox, without a model.

For every scenario: the reference answer (its reference_turns, replayed in order) must pass;
an empty answer must fail; for single-reply packs, answering with the unchanged original file
must fail too (except where the pack expects no change). Prints one line per problem and
exits 1 when there is any. Needs the sandbox image (`make sandboxes`).

    python scripts/check_sandbox_pack.py packs/cli-40 [--scenario ID ...] [-v]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.packs.agent import apply_single_reply, run_episode
from harness.packs.loader import load_pack_dir
from harness.packs.sandbox import AgentSandbox, pack_folder, require_agent_image
from harness.packs.schema import Pack, Reply, Scenario, Verdict
from harness.packs.verifiers import judge


def _reference_reply(turn_index: list[int], scenario: Scenario):
    """A `send` for run_episode that replays the reference turns whatever the tools said."""
    from harness.endpoint.replies import ChatReply, Usage

    def send(messages: list[dict]) -> ChatReply | None:
        if turn_index[0] >= len(scenario.reference_turns):
            return None
        turn = scenario.reference_turns[turn_index[0]]
        turn_index[0] += 1
        calls = [{"id": f"ref_{turn_index[0]}_{i}", "type": "function",
                  "function": {"name": c.name, "arguments": c.arguments}} for i, c in enumerate(turn.tool_calls)]
        return ChatReply(content=turn.content, raw_content=turn.content, reasoning="", content_source="content",
                         tool_calls=calls, finish_reason="tool_calls" if calls else "stop", usage=Usage(),
                         timings=None, body={}, latency_ms=0)
    return send


def attempt(pack: Pack, scenario: Scenario, kind: str) -> Verdict:
    """Judge one scripted answer ("reference", "empty" or "original") in a fresh sandbox."""
    settings = pack.meta.sandbox
    assert settings is not None and scenario.sandbox is not None
    asserts = [dict(a) for a in scenario.verifier.asserts]
    with AgentSandbox(pack, scenario) as box:
        if settings.mode == "agent":
            send = _reference_reply([0], scenario) if kind == "reference" else (lambda messages: None)
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
    return judge(scenario, reply)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", type=Path, help="the pack folder, e.g. packs/cli-40")
    parser.add_argument("--scenario", action="append", default=[], help="only these scenario ids")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check of every attempt")
    args = parser.parse_args()
    try:
        pack = load_pack_dir(args.pack)
        if pack.meta.sandbox is None:
            print(f"{args.pack}: pack.json has no sandbox section", file=sys.stderr)
            return 2
        require_agent_image()
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
        print(f"{args.pack}: {problems} problem(s)")
        return 1 if problems else 0
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
