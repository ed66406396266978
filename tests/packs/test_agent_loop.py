"""The agent loop and the sandbox verifier, without a container: a recording stand-in for the
sandbox answers tool calls, so the loop's rules (budgets, loops, hallucinations, schema
errors, submit) and the verdicts computed from evidence are checked on their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.endpoint.replies import ChatReply, Usage
from harness.errors import PackError
from harness.packs import agent
from harness.packs.loader import load_pack_dir
from harness.packs.schema import AgentStats, FileState, PackSandbox, ProbeResult, Reply, SandboxEvidence, Scenario
from harness.packs.verifiers import judge

SETTINGS = PackSandbox(mode="agent", max_turns=6, max_tokens_total=1000, loop_repeats=3, max_hallucinations=2)


class Box:
    """Stands in for AgentSandbox's tools: records calls, answers like a shell would."""

    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []

    def bash(self, command):
        self.calls.append(("bash", (command,)))
        return f"exit_code: 0\nstdout:\nran {command}\nstderr:\n", {"exit_code": 0}

    def read_file(self, path):
        self.calls.append(("read_file", (path,)))
        return "text", {}

    def write_file(self, path, content):
        self.calls.append(("write_file", (path, content)))
        return f"wrote {len(content)} bytes to {path}", {"bytes": len(content)}

    def list_dir(self, path="."):
        self.calls.append(("list_dir", (path,)))
        return "total 0", {}

    def call(self, name, arguments):
        return getattr(self, name)(*arguments.values())


def reply(*calls, content="", tokens=10) -> ChatReply:
    tool_calls = [{"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": args}}
                  for i, (name, args) in enumerate(calls)]
    return ChatReply(content=content, raw_content=content, reasoning="", content_source="content",
                     tool_calls=tool_calls, finish_reason="tool_calls" if calls else "stop",
                     usage=Usage(completion_tokens=tokens), timings=None, body={}, latency_ms=1)


def scripted(*replies):
    queue = list(replies)
    seen: list[list[dict]] = []

    def send(messages):
        seen.append([dict(m) for m in messages])
        return queue.pop(0) if queue else reply(content="done")
    send.seen = seen  # type: ignore[attr-defined]
    return send


def test_tools_run_in_order_and_submit_ends_the_episode():
    box = Box()
    send = scripted(reply(("bash", json.dumps({"command": "ls"}))),
                    reply(("write_file", {"path": "a.txt", "content": "x"})),
                    reply(("submit", {"status": "done", "answer": "wrote it"})),
                    reply(("bash", {"command": "never"})))
    episode = agent.run_episode(send, box, SETTINGS, [{"role": "user", "content": "go"}])
    assert box.calls == [("bash", ("ls",)), ("write_file", ("a.txt", "x"))]
    assert (episode.status, episode.answer, episode.stats.end_reason) == ("done", "wrote it", "submitted")
    assert episode.stats.turns == 3 and episode.stats.tool_calls == 3
    tool_message = send.seen[1][-1]  # what the model saw after its first call
    assert tool_message["role"] == "tool" and "ran ls" in tool_message["content"]


def test_the_same_call_repeated_is_a_loop_and_is_not_run_again():
    box = Box()
    same = ("bash", {"command": "cat x"})
    episode = agent.run_episode(scripted(reply(same), reply(same), reply(same), reply(same)), box, SETTINGS, [])
    assert episode.stats.loop_detected and episode.stats.end_reason == "loop"
    assert len(box.calls) == 2  # the third identical call is stopped, not executed


def test_unknown_tools_are_answered_counted_and_end_the_episode_at_the_limit():
    box = Box()
    send = scripted(reply(("run_shell", {"cmd": "ls"})), reply(("browse", {"url": "x"})),
                    reply(("bash", {"command": "ls"})))
    episode = agent.run_episode(send, box, SETTINGS, [])
    assert episode.stats.hallucinations == 2 and episode.stats.end_reason == "hallucinations"
    assert box.calls == []
    assert "no tool named 'run_shell'" in send.seen[1][-1]["content"]
    assert "bash, read_file, write_file, list_dir, submit" in send.seen[1][-1]["content"]


@pytest.mark.parametrize("arguments, problem", [
    ("{not json", "not valid JSON"),
    ({"cmd": "ls"}, "missing argument(s): command"),
    ({"command": "ls", "shell": "zsh"}, "unknown argument(s): shell"),
    ({"command": ["ls"]}, "command must be a string"),
])
def test_malformed_arguments_get_an_error_the_model_can_read(arguments, problem):
    box = Box()
    send = scripted(reply(("bash", arguments)), reply(("submit", {"status": "done", "answer": "ok"})))
    episode = agent.run_episode(send, box, SETTINGS, [])
    assert episode.stats.schema_errors == 1 and box.calls == []
    assert problem in send.seen[1][-1]["content"]
    assert episode.calls[0].error and problem in episode.calls[0].error


def test_submit_with_a_status_outside_the_enum_is_a_schema_error():
    send = scripted(reply(("submit", {"status": "finished", "answer": "ok"})))
    episode = agent.run_episode(send, Box(), SETTINGS, [])
    assert episode.stats.schema_errors == 1 and episode.status is None


def test_turn_and_token_budgets_end_the_episode():
    calls = [reply(("bash", {"command": f"echo {i}"})) for i in range(10)]
    assert agent.run_episode(scripted(*calls), Box(), SETTINGS, []).stats.end_reason == "max_turns"
    heavy = [reply(("bash", {"command": f"echo {i}"}), tokens=600) for i in range(10)]
    stats = agent.run_episode(scripted(*heavy), Box(), SETTINGS, []).stats
    assert stats.end_reason == "max_tokens" and stats.turns == 2


def test_a_text_reply_ends_the_episode_as_the_answer_and_a_failed_request_as_no_reply():
    episode = agent.run_episode(scripted(reply(content="All done.")), Box(), SETTINGS, [])
    assert (episode.stats.end_reason, episode.answer) == ("answered", "All done.")
    assert agent.run_episode(lambda messages: None, Box(), SETTINGS, []).stats.end_reason == "no_reply"


def test_the_agent_system_prompt_is_added_only_when_the_scenario_has_none():
    user = [{"role": "user", "content": "task"}]
    assert agent.with_system_prompt(user)[0] == {"role": "system", "content": agent.SYSTEM_PROMPT}
    own = [{"role": "system", "content": "mine"}] + user
    assert agent.with_system_prompt(own) == own


@pytest.mark.parametrize("content, status, text", [
    ("Fixed:\n\n```python\nprint(1)\n```\n", "done", "print(1)\n"),
    ("first\n```sh\necho a\n```\nthen\n```bash\necho b\n```", "done", "echo b\n"),
    ("The code is right.\n\nNO_CHANGE\n", "no_change", None),
    ("**NO_CHANGE**", "no_change", None),
    ("I think the bug is on line 3.", None, None),
    ("", None, None),
])
def test_single_reply_solutions(content, status, text):
    assert agent.extract_solution(content) == (status, text)


# ---- the verifier, over evidence ---------------------------------------------------------

def _file(text: str, mode: int = 0o644) -> FileState:
    import hashlib
    return FileState(kind="file", mode=mode, size=len(text), sha256=hashlib.sha256(text.encode()).hexdigest(),
                     text=text)


def _scenario(asserts: list[dict]) -> Scenario:
    return Scenario.model_validate({"id": "s", "messages": [{"role": "user", "content": "t"}],
                                    "sandbox": {}, "verifier": {"type": "sandbox", "asserts": asserts}})


BEFORE = {"data.txt": _file("a\nb\n"), "keep.txt": _file("keep\n"), "src": FileState(kind="dir", mode=0o755)}


def _evidence(after: dict, **fields) -> SandboxEvidence:
    return SandboxEvidence(before=BEFORE, after=after, **fields)


def test_state_checks_pass_on_the_right_state_and_name_what_is_wrong_otherwise():
    scenario = _scenario([{"check": "file", "path": "out.txt", "lines": ["2"]},
                          {"check": "unchanged_except", "paths": ["out.txt"]},
                          {"check": "submitted", "status": "done"}])
    good = _evidence({**BEFORE, "out.txt": _file("2\n")}, status="done")
    assert judge(scenario, Reply(sandbox=good)).failure_mode == "passed"
    damaged = _evidence({"data.txt": _file("a\n"), "src": BEFORE["src"], "out.txt": _file("2\n")}, status="done")
    verdict = judge(scenario, Reply(sandbox=damaged))
    assert verdict.failure_mode == "verifier_fail" and verdict.score == 0
    assert "data.txt changed" in verdict.detail and "keep.txt removed" in verdict.detail


def test_every_file_expectation_can_fail():
    after = {**BEFORE, "out.json": _file('{"n": 2}'), "run.sh": _file("#!/bin/sh\n", 0o755)}
    cases = [({"json": {"n": 2}}, {"json": {"n": 3}}, "out.json"),
             ({"equals": '{"n": 2}'}, {"equals": '{"n": 2}\n'}, "out.json"),
             ({"regex": r'"n": \d'}, {"regex": r'"m"'}, "out.json"),
             ({"contains": "n"}, {"not_contains": "n"}, "out.json"),
             ({"mode": "755"}, {"mode": "644"}, "run.sh"),
             ({"exists": True}, {"exists": False}, "run.sh"),
             ({"unchanged": True}, {"unchanged": False}, "data.txt")]
    for good, bad, path in cases:
        for expectation, passes in ((good, True), (bad, False)):
            scenario = _scenario([{"check": "file", "path": path, **expectation}])
            verdict = judge(scenario, Reply(sandbox=_evidence(after, status="done")))
            assert (verdict.failure_mode == "passed") is passes, (path, expectation, verdict.detail)


def test_command_probes_are_judged_on_the_host_and_partial_credit_only_where_the_pack_says():
    scenario = _scenario([{"check": "command", "run": "python3 /tmp/bw-check/driver.py", "exit_code": 0,
                           "stdout": {"lines": ["3", "7"]}},
                          {"check": "answer", "regex": "(?i)off.by.one", "core": False, "credit": 60}])
    probe = ProbeResult(assert_index=0, exit_code=0, stdout="3\n8\n", stderr="")
    half = judge(scenario, Reply(content="x", sandbox=_evidence(BEFORE, probes=[probe], answer="an off-by-one")))
    assert (half.score, half.status, half.failure_mode) == (60, "partial", "verifier_fail")
    none = judge(scenario, Reply(content="x", sandbox=_evidence(BEFORE, probes=[probe], answer="no idea")))
    assert none.score == 0
    right = probe.model_copy(update={"stdout": "3\n7\n"})
    assert judge(scenario, Reply(content="x", sandbox=_evidence(BEFORE, probes=[right]))).score == 100
    timed_out = right.model_copy(update={"timed_out": True})
    assert judge(scenario, Reply(content="x", sandbox=_evidence(BEFORE, probes=[timed_out]))).score == 0


def test_do_nothing_is_no_answer_and_abnormal_ends_name_their_cause():
    scenario = _scenario([{"check": "file", "path": "out.txt", "exists": True}])
    assert judge(scenario, Reply(sandbox=_evidence(BEFORE))).failure_mode == "no_answer_found"
    for reason, mode in (("loop", "loop_detected"), ("hallucinations", "tool_hallucination"),
                         ("wall_budget", "agent_runner_timeout"), ("max_tokens", "token_limit")):
        reply = Reply(sandbox=_evidence(BEFORE), agent=AgentStats(end_reason=reason))
        assert judge(scenario, reply).failure_mode == mode


def test_refusing_an_unsafe_task_passes_only_with_no_changes():
    scenario = _scenario([{"check": "submitted", "status": "unsafe"}, {"check": "no_changes"}])
    assert judge(scenario, Reply(sandbox=_evidence(BEFORE, status="unsafe"))).failure_mode == "passed"
    acted = _evidence({k: v for k, v in BEFORE.items() if k != "keep.txt"}, status="unsafe")
    assert judge(scenario, Reply(sandbox=acted)).failure_mode == "verifier_fail"


@pytest.mark.parametrize("bad_assert, field", [
    ({"check": "file", "path": "x"}, "exactly one of"),
    ({"check": "file", "path": "x", "equals": "a", "contains": "b"}, "exactly one of"),
    ({"check": "command"}, "needs run"),
    ({"check": "command", "run": "ls", "stdout": {"startswith": "a"}}, "stdout/stderr take one of"),
    ({"check": "submitted"}, "needs status"),
    ({"check": "submitted", "status": "finished"}, "status"),
    ({"check": "file", "path": "x", "regex": "("}, "does not compile"),
    ({"check": "answer"}, "needs contains"),
])
def test_pack_mistakes_in_asserts_are_one_line_at_load_time(tmp_path: Path, bad_assert, field):
    folder = tmp_path / "broken-1"
    folder.mkdir()
    (folder / "pack.json").write_text(json.dumps({"id": "broken-1", "version": "1", "sandbox": {"mode": "agent"}}))
    line = {"id": "s1", "messages": [{"role": "user", "content": "t"}], "sandbox": {},
            "verifier": {"type": "sandbox", "asserts": [bad_assert]}}
    (folder / "scenarios.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(PackError) as error:
        load_pack_dir(folder)
    message = str(error.value)
    assert "\n" not in message and "scenarios.jsonl:1" in message and field in message


@pytest.mark.parametrize("pack_sandbox, scenario_sandbox, message", [
    ({"mode": "agent"}, None, "field sandbox: required"),
    (None, {}, "only sandboxed packs"),
    ({"mode": "agent"}, {"fixture": "nope"}, "field sandbox.fixture: folder"),
    ({"mode": "agent"}, {"hidden": "nope"}, "field sandbox.hidden: folder"),
    ({"mode": "single_reply"}, {}, "field sandbox.solution_path: required"),
])
def test_sandbox_sections_are_checked_at_load_time(tmp_path: Path, pack_sandbox, scenario_sandbox, message):
    folder = tmp_path / "broken-2"
    folder.mkdir()
    meta = {"id": "broken-2", "version": "1", **({"sandbox": pack_sandbox} if pack_sandbox else {})}
    (folder / "pack.json").write_text(json.dumps(meta))
    verifier = {"type": "sandbox", "asserts": [{"check": "no_changes"}]} if pack_sandbox else \
        {"type": "answer_match", "answers": ["a"]}
    line = {"id": "s1", "messages": [{"role": "user", "content": "t"}], "verifier": verifier,
            **({"sandbox": scenario_sandbox} if scenario_sandbox is not None else {})}
    (folder / "scenarios.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(PackError) as error:
        load_pack_dir(folder)
    assert message in str(error.value) and "\n" not in str(error.value)
