"""Thinking metrics of the reasoning suite against a scripted OpenAI-compatible server:
budget, cap hits, silent and contaminated replies, --strict-thinking, template consistency,
and dataset packs reported as unavailable."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.packs import loader
from harness.packs.runner import RunOptions, read_result, run_packs
from harness.packs.selection import selection_args
from tests.doubles.scripted_chat import ScriptedServer, chat_reply

REPO_ROOT = Path(__file__).resolve().parents[2]
GSM = loader.load_pack(REPO_ROOT / "packs" / "gsm-30")
ANSWERS = {s.messages[-1]["content"]: s.verifier.model_extra["answer"] for s in GSM.scenarios}
IDS = {s.messages[-1]["content"]: s.id for s in GSM.scenarios}


def _server(behaviour):
    """A server whose reply to each gsm-30 question is behaviour(scenario_id, answer)."""
    def reply(body):
        question = body["messages"][-1]["content"]
        if question not in ANSWERS:  # the speed probe
            return 200, chat_reply("one two three", tokens=3)
        return 200, behaviour(IDS[question], ANSWERS[question])
    return ScriptedServer(reply).start()


def _run(server, pack=GSM, **options):
    return run_packs([pack], RunOptions(base_url=server.base_url, timeout_override_s=10, retry_backoff_s=0.05,
                                        **options))


def test_clean_thinking_is_valid_and_the_pack_budget_is_added_to_max_tokens():
    server = _server(lambda sid, answer: chat_reply(f"ANSWER: {answer}", reasoning="adding it up"))
    try:
        result = _run(server)
    finally:
        server.stop()
    [pack] = result.packs
    assert pack.passed == 30 and result.thinking_validity == "valid"
    assert pack.thinking is not None and pack.thinking.with_thinking == 30 and pack.thinking.cap_hits == 0
    chats = [b for b in server.bodies if b["messages"][-1]["content"] in ANSWERS]
    assert {b["max_tokens"] for b in chats} == {512 + 4096}
    assert all(b["chat_template_kwargs"] == {"enable_thinking": True} for b in chats if "chat_template_kwargs" in b)
    assert pack.consistency is not None and pack.consistency.consistent == 10 and pack.consistency.all_passed == 10


def test_thinking_max_tokens_overrides_the_pack_budget_and_no_thinking_adds_none():
    server = _server(lambda sid, answer: chat_reply(f"ANSWER: {answer}"))
    try:
        _run(server, thinking_budget_tokens=100)
        with_budget = {b["max_tokens"] for b in server.bodies if b["messages"][-1]["content"] in ANSWERS}
        server.bodies.clear()
        result = _run(server, thinking=False)
        without = {b["max_tokens"] for b in server.bodies if b["messages"][-1]["content"] in ANSWERS}
    finally:
        server.stop()
    assert with_budget == {612} and without == {512}
    assert result.thinking_validity == "not_requested" and result.packs[0].thinking is None


def test_cap_hits_silent_and_contaminated_replies_are_counted():
    def behaviour(sid, answer):
        if sid.startswith(("bakery", "savings")):  # 6: budget ran out mid-thought
            return chat_reply("", reasoning="let me add... " * 20, finish_reason="length")
        if sid.startswith("garden"):  # 3: the thinking leaked into the answer
            return chat_reply(f"<think>multiply</think>ANSWER: {answer}")
        if sid.startswith("bus"):  # 3: a reasoning preamble in the content
            return chat_reply(f"Okay, so the user wants the passengers.\nANSWER: {answer}")
        if sid.startswith("trip"):  # 3: no thinking at all
            return chat_reply(f"ANSWER: {answer}")
        return chat_reply(f"ANSWER: {answer}", reasoning="fine")
    server = _server(behaviour)
    try:
        result = _run(server)
    finally:
        server.stop()
    health = result.packs[0].thinking
    assert health is not None
    assert (health.replies, health.cap_hits, health.contaminated, health.silent) == (30, 6, 6, 3)
    assert health.cap_hit_rate == pytest.approx(0.2)
    assert health.validity == "contaminated" and result.thinking_validity == "contaminated"


def test_silent_when_no_reply_thinks_and_strict_thinking_exits_non_zero(tmp_path, capsys):
    server = _server(lambda sid, answer: chat_reply(f"ANSWER: {answer}"))
    save = tmp_path / "r.json"
    try:
        code = cli.main(["packs", "run", "--base-url", server.base_url, "--pack", "gsm-30", "--limit", "4",
                         "--timeout-s", "10", "--no-progress", "--save-json", str(save), "--strict-thinking"])
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert code != 0 and "--strict-thinking: thinking was silent" in err and "Traceback" not in err
    saved = read_result(save)  # the result is written before the exit
    assert saved.thinking_validity == "silent" and saved.packs[0].total == 4
    assert saved.packs[0].thinking is not None and saved.packs[0].thinking.silent == 4


def test_inconsistent_templates_are_told_apart_from_consistent_ones():
    wrong = {"bakery-2", "ages-3"}  # one instance of two templates
    server = _server(lambda sid, answer: chat_reply(f"ANSWER: {int(answer) + (1 if sid in wrong else 0)}",
                                                    reasoning="ok"))
    try:
        result = _run(server)
    finally:
        server.stop()
    consistency = result.packs[0].consistency
    assert consistency is not None
    assert (consistency.templates, consistency.consistent, consistency.all_passed) == (10, 8, 8)
    assert consistency.per_template["bakery"] == [True, False, True]


def test_reasoning_selection_reports_missing_datasets_as_unavailable(tmp_path, monkeypatch, capsys):
    assert selection_args("reasoning") == ["--reasoning"]
    monkeypatch.setenv("BENCHWRIGHT_DATA_DIR", str(tmp_path / "no-data"))
    for name in ("LIVECODEBENCH_PATH", "GPQA_PATH", "HUMANEVAL_OVERRIDE_PATH"):
        monkeypatch.delenv(name, raising=False)
    server = _server(lambda sid, answer: chat_reply(f"ANSWER: {answer}", reasoning="r"))
    save = tmp_path / "r.json"
    try:
        code = cli.main(["packs", "run", "--base-url", server.base_url, "--reasoning", "--limit", "2",
                         "--timeout-s", "10", "--no-progress", "--save-json", str(save)])
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert code == 0
    saved = read_result(save)
    assert [p.pack_id for p in saved.packs] == ["gsm-30"]
    gone = {u.pack_id: u for u in saved.unavailable}
    assert set(gone) == {"humaneval-plus-30", "livecodebench", "gpqa"}
    assert "LIVECODEBENCH_PATH" in gone["livecodebench"].how_to_enable and "GPQA_PATH" in gone["gpqa"].how_to_enable
    assert "livecodebench: dataset-unavailable" in out and "Thinking: valid" in out
