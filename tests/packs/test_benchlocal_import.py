"""BenchLocal pack files load unmodified and score with upstream's pass rules (harness.packs.benchlocal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main as cli
from harness.errors import PackError
from harness.packs import benchlocal, loader
from harness.packs.runner import RunOptions, run_packs
from harness.packs.schema import PASS_SCORE, ReferenceTurn, Reply, Scenario, ToolCallOut, ToolCallRecord
from harness.packs.verifiers import judge
from tests.doubles.scripted_server import ScriptedModel

DATA = Path(__file__).resolve().parents[1] / "data" / "benchlocal"


def load(name: str):
    return loader.load_pack(DATA / f"{name}.jsonl")


def scenario(pack: str, scenario_id: str) -> Scenario:
    return next(s for s in load(pack).scenarios if s.id == scenario_id)


def text(content: str, reasoning: str = "") -> Reply:
    return Reply(content=content, raw_content=content, reasoning=reasoning, content_source="content")


def calls(*made: tuple[str, Any]) -> Reply:
    return Reply(tool_calls=[ToolCallRecord(turn=1, name=n, arguments=a, arguments_valid_json=isinstance(a, dict))
                             for n, a in made])


# --- loading: every field honoured or listed --------------------------------------------------------
def test_meta_fields_are_honoured_and_the_rest_listed_as_ignored():
    pack = load("toolcall")
    meta = pack.meta
    assert (meta.id, meta.version, meta.format, meta.license) == ("bl-toolcall", "0.3.0", "benchlocal", "MIT")
    assert (meta.sampling_defaults.temperature, meta.sampling_defaults.top_p, meta.sampling_defaults.max_tokens) \
        == (0, 1, 300)
    assert meta.request_defaults == {"tool_choice": "auto",
                                     "chat_template_kwargs": {"enable_thinking": False, "keep_tool_notes": True}}
    assert meta.default_thinking is False and meta.thinking_sampling.temperature == 0.3
    assert meta.default_max_seconds == 90  # timeout_per_case_default wins over default_max_seconds, as upstream
    assert (meta.timeout_reference_tps, meta.baseline_max_tokens, meta.verifier_module) == (55, 256, "tool_call")
    for field in ("timeout_ceiling_s", "safety_policy", "suite", "subset", "upstream_repo", "porter", "mystery_knob",
                  "supports_sandboxed_only", "scenarios[].tags", "scenarios[].no_best_of_n",
                  "scenarios[].upstream_evaluate_summary", "scenarios[].expected_weather"):
        assert field in meta.ignored_fields, field
    for honoured in ("sampling_defaults", "default_thinking", "thinking_sampler", "timeout_reference_tps",
                     "scenarios[].sampling_overrides", "scenarios[].benchmark_reference_date"):
        assert honoured not in meta.ignored_fields
    assert meta.extras["upstream_commit"] == "0123abc" and meta.extras["mystery_knob"] == 7  # kept verbatim


def test_scenario_fields_reference_date_overrides_and_single_reply():
    first, second, _, _, fifth = load("toolcall").scenarios
    assert first.messages[0]["content"].endswith("Benchmark reference date: 2026-04-09 (Thursday).")
    assert first.sampling_overrides.max_tokens == 200 and first.request_overrides == {"tool_choice": "required"}
    assert first.extras["tags"] == ["single"] and first.extras["no_best_of_n"] is True
    assert second.max_seconds_override == 30 and first.max_turns == 1  # upstream judges the first reply
    assert (fifth.verifier.type, fifth.verifier.upstream) == ("benchlocal", "tool_call")  # from verifier_module


def test_unknown_fields_warn_in_one_line_and_known_ones_do_not():
    pack = load("toolcall")
    assert len(pack.warnings) == 1
    assert "mystery_knob (line 1)" in pack.warnings[0] and "expected_weather (line 5)" in pack.warnings[0]
    assert "tags" not in pack.warnings[0] and "timeout_ceiling_s" not in pack.warnings[0]
    assert load("instructfollow").warnings == []


def test_cli_prints_the_warning_on_stderr_and_still_runs(capsys, tmp_path):
    pack = load("instructfollow")
    out = tmp_path / "r.json"
    with ScriptedModel(pack.scenarios, mode="empty") as model:
        code = cli.main(["packs", "run", "--base-url", model.base_url, "--pack-file", str(DATA / "toolcall.jsonl"),
                         "--timeout-per-case", "10", "--no-progress", "--save-json", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("warning:")] == \
        [f"warning: {load('toolcall').warnings[0]}"]
    assert "mystery_knob" in json.loads(out.read_text())["packs"][0]["ignored_fields"]


def test_our_own_verifier_shapes_in_a_benchlocal_file_keep_our_verifiers():
    sample = loader.load_pack(DATA.parent / "benchlocal_sample.jsonl")
    assert {s.verifier.type for s in sample.scenarios} >= {"answer_match", "reason_math", "data_extract"}


# --- wrong values: one PackError naming file:line and field -------------------------------------------
@pytest.mark.parametrize(("line", "edit", "message"), [
    (1, lambda r: r["sampling_defaults"].update(temperature="hot"),
     r"toolcall\.jsonl:1: field sampling_defaults\.temperature"),
    (1, lambda r: r["sampling_defaults"].update(tool_choice="sometimes"), r":1: field sampling_defaults\.tool_choice"),
    (1, lambda r: r["sampling_defaults"].update(chat_template_kwargs=[1]),
     r":1: field sampling_defaults\.chat_template_kwargs"),
    (1, lambda r: r.update(default_thinking="maybe"), r":1: field default_thinking: must be \"on\" or \"off\""),
    (1, lambda r: r.update(thinking_sampler={"top_k": "x"}), r":1: field thinking_sampler\.top_k"),
    (1, lambda r: r.update(default_max_seconds=-3, timeout_per_case_default=None), r":1: field default_max_seconds"),
    (2, lambda r: r["sampling_overrides"].update(tool_choice=3), r":2: field sampling_overrides\.tool_choice"),
    (2, lambda r: r["verifier"]["asserts"][6].update(pattern="(("),
     r":2: field verifier\.asserts\[6\]\.pattern: not a valid"),
    (2, lambda r: r["verifier"]["asserts"][2].update(value="one"), r":2: field verifier\.asserts\[2\]\.value"),
    (2, lambda r: r["verifier"]["asserts"][0].update(kind="exact_fn"),
     r":2: field verifier\.asserts\[0\]\.kind: unknown"),
    (2, lambda r: r["verifier"]["asserts"][0].pop("value"), r":2: field verifier\.asserts\[0\]\.value: required"),
    (2, lambda r: r["verifier"].update(type="vibes"), r":2: field verifier\.type: unknown BenchLocal verifier"),
    (3, lambda r: r.pop("messages"), r":3: field messages"),
])
def test_a_wrong_value_is_one_pack_error_naming_line_and_field(tmp_path, line, edit, message):
    rows = [json.loads(x) for x in (DATA / "toolcall.jsonl").read_text().splitlines()]
    edit(rows[line - 1])
    broken = tmp_path / "toolcall.jsonl"
    broken.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(PackError, match=message) as caught:
        loader.load_pack(broken)
    assert "\n" not in str(caught.value)


def test_unsupported_json_schema_keyword_is_refused_at_load(tmp_path):
    rows = [json.loads(x) for x in (DATA / "structoutput.jsonl").read_text().splitlines()]
    rows[1]["verifier"]["asserts"][1]["schema"]["oneOf"] = []
    broken = tmp_path / "s.jsonl"
    broken.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(PackError, match=r"s\.jsonl:2: field verifier\.asserts\[1\]\.schema: .*oneOf"):
        loader.load_pack(broken)


# --- tool_call --------------------------------------------------------------------------------------
def test_tool_call_asserts():
    s = scenario("toolcall", "TC-1")
    good = {"origin": "Lyon", "destination": "Turin", "day": "2026-04-10", "seats": 2}
    assert judge(s, calls(("find_train", good))).score == 100
    for wrong in ({**good, "day": "2026-04-09"}, {**good, "seats": 9}, {**good, "destination": "Milan"},
                  {**good, "origin": "lyon"}, {**good, "train_id": "T1"},
                  {k: v for k, v in good.items() if k != "day"}):
        verdict = judge(s, calls(("find_train", wrong)))
        assert verdict.failure_mode == "verifier_fail" and verdict.score < PASS_SCORE, wrong
    assert judge(s, calls(("book_seat", good))).detail.startswith("expected first tool find_train")
    assert judge(s, calls(("find_train", good), ("find_train", good))).failure_mode == "verifier_fail"  # count 1
    assert judge(s, text("I would search for trains.")).failure_mode == "wrong_answer"  # no tool_calls
    assert judge(s, calls(("find_train", "{not json"))).failure_mode == "invalid_json"


def test_tool_call_order_prefix_and_no_call_scenarios():
    both = scenario("toolcall", "TC-2")
    assert judge(both, calls(("book_seat", {"train_id": "T9"}), ("send_receipt", {"email": "a"}))).score == 100
    assert judge(both, calls(("send_receipt", {"email": "a"}), ("book_seat", {"train_id": "T9"}))).score == 0
    chain = scenario("toolcall", "TC-3")
    assert judge(chain, calls(("find_train", {}))).score == 100  # a correct first step of a dependent chain
    assert judge(chain, calls(("book_seat", {}))).score == 0
    none = scenario("toolcall", "TC-4")
    assert judge(none, text("It opened in 1906.")).score == 100
    assert judge(none, text("It opened in 1910.")).failure_mode == "verifier_fail"


# --- instruct_follow ----------------------------------------------------------------------------------
def test_instruct_follow_asserts():
    s = scenario("instructfollow", "IF-1")
    assert judge(s, text("# rivers\n- rhine\n- po\n- loire")).score == 100
    assert judge(s, text("# rivers\n- Rhine\n- po\n- loire")).detail == "response was not lowercase"
    assert judge(s, text("# rivers\n- rhine\n- po")).detail == "2 bullets, want 3"
    assert judge(s, text("# rivers\n- rhône\n- po\n- loire")).failure_mode == "verifier_fail"  # english: ASCII
    six = scenario("instructfollow", "IF-2")
    assert judge(six, text("The tide follows the moon nightly")).score == 100
    assert judge(six, text("The tide follows the moon")).detail == "5 words, want 6"
    assert judge(six, text("the tide follows the moon nightly")).detail == "format regex did not match"
    urls = scenario("instructfollow", "IF-3")
    assert judge(urls, text("See http://a.org and https://b.org/x")).score == 100
    assert judge(urls, text("See http://a.org and HTTPS://B.ORG")).detail == "1 URLs, want at least 2"
    title = scenario("instructfollow", "IF-4")
    assert judge(title, text("The Long Road Home")).score == 100
    assert judge(title, text("The long road home")).detail == "response was not titlecase"


# --- struct_output ------------------------------------------------------------------------------------
def test_struct_output_asserts():
    s = scenario("structoutput", "SO-1")
    assert judge(s, text('```json\n{"id": 7, "name": "Kim", "tags": ["a", "b"]}\n```')).score == 100
    assert judge(s, text('{"id": 7, "name": "Kim", "tags": ["a", "b"], "x": 1}')).failure_mode == "schema_violation"
    assert judge(s, text('{"id": "7", "name": "Kim", "tags": ["a", "b"]}')).failure_mode == "schema_violation"
    assert judge(s, text('{"id": 7, "name": "Kim", "tags": ["a", "c"]}')).detail == "$.tags[1] is \"c\""
    assert judge(s, text("id: 7")).failure_mode == "invalid_json"
    assert judge(scenario("structoutput", "SO-2"), text("city,country\nOslo,NO")).score == 100
    assert judge(scenario("structoutput", "SO-2"), text("town,country\nOslo,NO")).failure_mode == "wrong_structure"
    assert judge(scenario("structoutput", "SO-3"), text("name: web\nport: 80")).score == 100
    assert judge(scenario("structoutput", "SO-3"), text("name web\nport: 80")).failure_mode == "wrong_structure"
    tables = scenario("structoutput", "SO-4")
    assert judge(tables, text("| item | qty |\n|---|---|\n| pen | 2 |\n\n| total |\n| :-: |\n| 2 |")).score == 100
    assert judge(tables, text("| total |\n|---|\n| 2 |\n| item | qty |\n|---|---|")).detail == \
        "markdown headers out of order"


# --- reason_math --------------------------------------------------------------------------------------
def test_reason_math_answer_axis_decides_and_trace_axis_scores():
    s = scenario("reasonmath", "RM-1")
    full = judge(s, text("120/8 = 15 at rate=8\nANSWER: minutes=15"))
    assert full.score == 100 and full.failure_mode == "passed"
    answer_only = judge(s, text("ANSWER: 15"))  # bare value of a single key=value answer passes; trace 0/2
    assert answer_only.status == "pass" and not answer_only.checks[1].ok
    assert judge(s, text("ANSWER: 15 minutes")).status == "pass"  # accepted answer
    partial = judge(s, text("120/8 with rate=8\nANSWER: minutes=14"))  # partial answer: 0.7*1/2 + 0.3 = 65
    assert (partial.score, partial.failure_mode) == (65, "wrong_answer")
    assert judge(s, text("minutes=15")).detail.startswith("answer axis 0/2")  # no ANSWER line
    assert judge(s, text("ANSWER: minutes=15", reasoning="120/8 and rate=8")).checks[1].ok  # trace from reasoning


def test_reason_math_numbers_and_strings():
    s = scenario("reasonmath", "RM-2")
    assert judge(s, text("10 and 3.14")).score == 100
    assert judge(s, text("10 and 3.2")).failure_mode == "wrong_answer"
    assert judge(s, text("ten")).failure_mode == "no_answer_found"
    strings = scenario("reasonmath", "RM-3")
    assert judge(strings, text("x=3, y=5")).score == 100
    assert judge(strings, text("so\nANSWER: X = 3; Y = 5")).failure_mode == "wrong_answer"  # regex passes, value no
    assert judge(strings, text("x=4, y=5")).failure_mode == "wrong_answer"


# --- data_extract -------------------------------------------------------------------------------------
def test_data_extract_expected_fields_with_upstream_threshold():
    s = scenario("dataextract", "DE-1")
    good = {"buyer": "Mo ", "paid": True, "notes": None,
            "items": [{"name": "pad", "qty": 1, "price": 4.0}, {"name": "pen", "qty": 2, "price": 1.505}]}
    assert judge(s, text(json.dumps(good))).score == 100  # order-free by anchor, trimmed, numbers ±0.01
    one_wrong = {**good, "paid": "yes"}  # 8/9 = 89% still passes upstream's 85% line
    assert judge(s, text(json.dumps(one_wrong))).status == "pass"
    two_wrong = {**good, "paid": "yes", "notes": "none"}  # 7/9 = 78%
    verdict = judge(s, text(json.dumps(two_wrong)))
    assert (verdict.score, verdict.failure_mode) == (78, "verifier_fail")
    assert judge(s, text(json.dumps([good]))).status == "pass"  # shape not declared: unwrapped, not failed
    assert judge(s, text("buyer: Mo")).failure_mode == "invalid_json"


def test_data_extract_declared_shape_and_field_asserts():
    s = scenario("dataextract", "DE-2")
    assert judge(s, text('[{"name": "Ole", "age": 8}, {"name": "Ida", "age": 40}]')).score == 100
    wrapped = judge(s, text('{"name": "Ida", "age": 40}'))
    assert wrapped.status != "pass" and not wrapped.checks[1].ok
    asserts = scenario("dataextract", "DE-3")
    good = {"contact": {"name": "Eva Lund", "phone": "+46 70 111"}, "status": "active"}
    assert judge(asserts, text(json.dumps(good))).score == 100
    extra = judge(asserts, text(json.dumps({**good, "email": "e@x"})))
    assert extra.failure_mode == "schema_violation" and "upstream: extra_fields" in extra.detail
    assert "upstream: missing_field" in judge(asserts, text('{"status": "active"}')).detail
    assert judge(asserts, text(json.dumps({**good, "status": "gone"}))).detail == "status not in set"


# --- answer_match, duplicate ids ------------------------------------------------------------------------
def test_gsm_style_answer_match_and_duplicate_ids():
    pack = load("gsm")
    assert [s.id for s in pack.scenarios] == ["GSM-0000", "GSM-0000#2", "GSM-0002", "MC-1"]
    assert pack.warnings == [f"{DATA / 'gsm.jsonl'}: duplicate scenario ids renamed: GSM-0000 on line 3 -> GSM-0000#2"]
    first, second, half, letter = pack.scenarios
    assert judge(first, text("36 - 5 = 31\nANSWER: 31")).score == 100
    assert judge(first, text("36 eggs, so\nANSWER: 36")).failure_mode == "wrong_answer"  # only the ANSWER line
    assert judge(second, text("ANSWER: 950")).score == 100 and judge(second, text("about 1,200 - 250")).score == 0
    assert judge(half, text("ANSWER: 3.75")).score == 100 and judge(half, text("ANSWER: 3.8")).score == 0
    assert judge(letter, text("Neon.\nANSWER: B")).score == 100
    assert judge(letter, text("ANSWER: C")).failure_mode == "wrong_answer"
    assert judge(letter, text("neon")).failure_mode == "no_answer_found"


# --- _stub and gated packs -------------------------------------------------------------------------------
def test_stub_scenarios_load_with_a_hint_and_are_not_scored():
    pack = load("stubs")
    stub, scored = pack.scenarios
    assert benchlocal.is_stub(stub) and not benchlocal.is_stub(scored)
    assert pack.meta.thinking_sampling.temperature == 0 and pack.meta.default_max_seconds == 300
    assert "our agent-20 pack" in pack.warnings[0] and len(pack.warnings) == 1
    for upstream_id, hint in (("bugfind-15", "bugfind-15"), ("cli-40", "cli-40"), ("humaneval-plus-30", "evalplus"),
                              ("lcb-v6-30", "no equivalent")):
        assert hint in benchlocal.equivalent_hint(upstream_id)
    with ScriptedModel([scored.model_copy(update={"reference_turns": [ReferenceTurn(content="ANSWER: 42")]})]) as model:
        result = run_packs([pack], RunOptions(base_url=model.base_url, timeout_override_s=10, retries=0))
        sent = [r for r in model.requests if "backup" in json.dumps(r)]
    [packed] = result.packs
    assert sent == []  # the stub is never sent to the model
    assert (packed.total, packed.passed, packed.mean_score) == (1, 1, 100.0)  # the stub is out of the scores
    by_id = {s.scenario_id: s for s in packed.scenarios}
    assert by_id["HA-1"].failure_mode == "verifier_not_implemented" and "agent-20" in by_id["HA-1"].detail
    assert packed.failure_counts["verifier_not_implemented"] == 1


def test_gated_pack_loads_with_nothing_to_run():
    pack = load("gated")
    assert pack.scenarios == [] and pack.meta.skip_reason == "the data set is gated; fetch it first"


# --- requests as upstream sent them, end to end ----------------------------------------------------------
def _referenced(pack) -> list[Scenario]:
    replies = {"TC-1": [ToolCallOut(name="find_train", arguments={"origin": "Lyon", "destination": "Turin",
                                                                 "day": "2026-04-10", "seats": 2})],
               "TC-2": [ToolCallOut(name="book_seat", arguments={"train_id": "T9"}),
                        ToolCallOut(name="send_receipt", arguments={"email": "ana@example.org"})],
               "TC-3": [ToolCallOut(name="find_train", arguments={"origin": "Lyon", "destination": "Turin"})],
               "TC-5": [ToolCallOut(name="send_receipt", arguments={"email": "bo@example.org"})]}
    return [s.model_copy(update={"reference_turns": [ReferenceTurn(content="" if s.id in replies else "In 1906.",
                                                                   tool_calls=replies.get(s.id, []))]})
            for s in pack.scenarios]


def test_toolcall_fixture_runs_end_to_end_with_upstream_request_fields():
    pack = load("toolcall")
    with ScriptedModel(_referenced(pack)) as model:
        result = run_packs([pack], RunOptions(base_url=model.base_url, timeout_override_s=10, retries=0))
        requests = {r["messages"][-1]["content"][:20]: r for r in model.requests if r.get("tools")}
    [packed] = result.packs
    assert (packed.passed, packed.total) == (5, 5), [(s.scenario_id, s.detail) for s in packed.scenarios]
    assert "timeout_ceiling_s" in packed.ignored_fields
    first = requests["Find me a train from"]
    assert first["tool_choice"] == "required" and first["max_tokens"] == 200  # scenario overrides
    assert requests["Book train T9 and em"]["tool_choice"] == "auto"  # pack default
    assert (first["temperature"], first["top_p"]) == (0, 1)
    # the pack's other kwargs go along; enable_thinking is ours (absent when the server has no switch)
    assert first["chat_template_kwargs"]["keep_tool_notes"] is True
    assert first["chat_template_kwargs"].get("enable_thinking", False) is False


def test_thinking_sampler_and_explicit_sampling_layering():
    pack = load("toolcall")
    tc1 = pack.scenarios[0]
    base = {"model": "m", "messages": [], "max_tokens": 200, "temperature": 0.0,
            "chat_template_kwargs": {"enable_thinking": True}}
    on = benchlocal.request_body(base, pack, tc1, thinking=True, sampling_source="canonical")
    assert (on["temperature"], on["top_p"], on["tool_choice"]) == (0.3, 0.9, "required")  # pack thinking_sampler
    assert on["chat_template_kwargs"] == {"keep_tool_notes": True, "enable_thinking": True}
    off = benchlocal.request_body({**base, "chat_template_kwargs": {"enable_thinking": False}}, pack, tc1,
                                  thinking=False, sampling_source="canonical")
    assert (off["temperature"], off["top_p"]) == (0, 1)
    explicit = benchlocal.request_body({**base, "temperature": 0.7}, pack, tc1, thinking=True,
                                       sampling_source="explicit")
    assert (explicit["temperature"], explicit["top_p"]) == (0.7, 0.9)  # the user's flags win, as upstream
    server = benchlocal.request_body({**base, "temperature": 0.7}, pack, tc1, thinking=True, sampling_source="server")
    assert "top_p" not in server and server["tool_choice"] == "required"
    no_sampler = load("gsm")
    upstream_default = benchlocal.request_body(base, no_sampler, no_sampler.scenarios[0], thinking=True,
                                               sampling_source="canonical")
    assert (upstream_default["temperature"], upstream_default["top_k"]) == (0.6, 20)
    ours = loader.load_pack(Path(__file__).resolve().parents[2] / "packs" / "toolcall-15")
    assert benchlocal.request_body(base, ours, ours.scenarios[0], thinking=True, sampling_source="canonical") is base
