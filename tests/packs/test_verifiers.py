"""Every verifier type: a reply that must pass and a near miss that must fail; pack data sanity."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.packs import loader
from harness.packs.schema import Reply, Scenario, ToolCallRecord
from harness.packs.verifiers import judge

# The deterministic packs; the agent ones are judged from sandbox or mock-service evidence
# (test_sandboxed_packs.py, test_world.py, test_repo_chores.py).
PACKS = {k: p for k, p in loader.discover_packs(Path(__file__).resolve().parents[2] / "packs").items()
         if p.meta.sandbox is None and p.meta.world is None and "reasoning" not in p.meta.modes}


def scenario(pack_id: str, scenario_id: str) -> Scenario:
    return next(s for s in PACKS[pack_id].scenarios if s.id == scenario_id)


def text(content: str, finish: str = "stop") -> Reply:
    return Reply(content=content, raw_content=content, content_source="content", finish_reason=finish)


def calls(*made: tuple[str, dict], final: str = "") -> Reply:
    records = [ToolCallRecord(turn=i, name=n, arguments=a) for i, (n, a) in enumerate(made, start=1)]
    return Reply(content=final, tool_calls=records, finish_reason="stop", turns=len(made) + 1)


# --- tool_call ------------------------------------------------------------------------------------
def test_tool_call_points():
    s = scenario("toolcall-15", "chain-refund")
    good = calls(("lookup_customer", {"email": "bob@example.com"}), ("get_order", {"order_id": "A-7731"}),
                 ("refund_order", {"order_id": "A-7731", "amount": 84.5}), final="Refunded.")
    assert judge(s, good).score == 100
    # near miss: right chain, but the amount was not carried over from get_order -> 1 point
    near = calls(("lookup_customer", {"email": "bob@example.com"}), ("get_order", {"order_id": "A-7731"}),
                 ("refund_order", {"order_id": "A-7731", "amount": 84}), final="Refunded.")
    verdict = judge(s, near)
    assert (verdict.score, verdict.failure_mode, verdict.status) == (50, "verifier_fail", "fail")
    # refunding an invented order id is 0 points
    assert judge(s, calls(("refund_order", {"order_id": "A-7730", "amount": 84.5}))).score == 0


def test_tool_call_restraint_and_recovery():
    s = scenario("toolcall-15", "restraint-capital")
    assert judge(s, text("The capital of Japan is Tokyo.")).score == 100
    assert judge(s, calls(("web_search", {"query": "capital of Japan"}), final="Tokyo")).score == 0
    r = scenario("toolcall-15", "recover-order-id")
    retried = calls(("get_order", {"order_id": "B-220"}), ("get_order", {"order_id": "B-0220"}), final="It shipped.")
    assert judge(r, retried).score == 100
    assert judge(r, calls(("get_order", {"order_id": "B-220"}), final="Order not found.")).score == 0


# --- instruct_follow ------------------------------------------------------------------------------
def test_instruct_follow_checklist():
    s = scenario("instructfollow-15", "words-exact-12")
    assert judge(s, text("Waves roll over deep cold water where whales and tiny fish live.")).score == 100
    near = judge(s, text("Waves roll over deep cold water where whales and small fish live together."))  # 13 words
    assert near.score == 75 and near.status == "partial" and "counted 13" in near.detail
    b = scenario("instructfollow-15", "bullets-three-fruits")
    assert judge(b, text("- Pear\n- Plum\n- Kiwi")).score == 100
    assert judge(b, text("Here are three:\n- Pear\n- Plum\n- Kiwi")).status != "pass"


def test_instruct_follow_impossible_request():
    s = scenario("instructfollow-15", "impossible-count")
    assert judge(s, text("I cannot: 2 is the only even prime, so five do not exist.")).score == 100
    assert judge(s, text("2\n4\n6\n8\n10")).status == "fail"


# --- struct_output --------------------------------------------------------------------------------
def test_struct_output_json_axes():
    s = scenario("structoutput-15", "json-person")
    clean = '{"name": "Mara Lind", "age": 34, "languages": ["sv", "en"], "active": true}'
    assert judge(s, text(clean)).score == 100
    fenced = judge(s, text(f"```json\n{clean}\n```"))
    assert fenced.score == 87.5 and fenced.status == "pass"
    prose = judge(s, text(f"Here you go:\n{clean}"))
    assert prose.score == 75 and prose.status == "partial"
    near = judge(s, text('{"name": "Mara Lind", "age": "34", "languages": ["sv", "en"], "active": true}'))
    assert near.status != "pass" and "$.age" in near.detail
    assert judge(s, text('{"name": "Mara Lind", "age": 34,')).failure_mode == "invalid_json"
    assert judge(s, text('[{"name": "Mara Lind"}]')).failure_mode == "schema_violation"
    assert judge(s, text('{"city": "Oslo"}')).score == 0  # parses, nothing right: no free points


@pytest.mark.parametrize("scenario_id, good, near", [
    ("csv-quoting", 'city,country,note\nParis,France,"capital, largest city"\nLyon,France,"says ""bonjour"""',
     'city,country,note\nParis,France,capital, largest city\nLyon,France,"says ""bonjour"""'),
    ("yaml-service", "name: web\nreplicas: 3\nimage: nginx:1.27\nports: [80, 443]\nenv: {MODE: prod}",
     "name: web\nreplicas: '3'\nimage: nginx:1.27\nports: [80, 443]\nenv: {MODE: prod}"),
    ("mdtable-planets", "|Planet|Moons|\n|:--|--:|\n|Mercury|0|\n|Earth|1|\n|Mars|2|",
     "| Planet | Moons |\n| Mercury | 0 |\n| Earth | 1 |\n| Mars | 2 |"),
    ("toml-config", '[server]\nhost="0.0.0.0"\nport=8080\n[limits]\nmax_body_kb=512\ntimeout_s=2.5',
     '[server]\nhost="0.0.0.0"\nport="8080"\n[limits]\nmax_body_kb=512\ntimeout_s=2.5'),
    ("xml-escaping", '<note lang="en"><to>R&amp;D team</to><body>use a &lt; b, not a &gt; b</body></note>',
     '<note lang="en"><to>R&D team</to><body>use a < b, not a > b</body></note>'),
    ("sql-filter", "select name from employees where hired < '2021-01-01' and salary > 75000 order by name",
     "SELECT name FROM employees WHERE salary > 75000 ORDER BY name"),
])
def test_struct_output_formats(scenario_id, good, near):
    s = scenario("structoutput-15", scenario_id)
    assert judge(s, text(good)).score == 100
    assert judge(s, text(near)).status != "pass"


def test_struct_output_sql_cannot_touch_the_host(tmp_path):
    s = scenario("structoutput-15", "sql-filter")
    target = tmp_path / "x.db"
    verdict = judge(s, text(f"ATTACH DATABASE '{target}' AS x"))
    assert verdict.score == 0 and not target.exists()
    runaway = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT name FROM employees, n"
    assert judge(s, text(runaway)).score == 0


# --- reason_math ----------------------------------------------------------------------------------
def test_reason_math_last_answer_line_counts():
    s = scenario("reasonmath-15", "shop-change")
    assert judge(s, text("7.20 + 1.85 = 9.05\n**ANSWER:** $10.95")).score == 100
    near = judge(s, text("ANSWER: 10.95\nWait, recheck.\nANSWER: 11.05"))
    assert near.failure_mode == "wrong_answer" and "inconsistent" in near.detail
    assert judge(s, text("The change is 10.95 dollars.")).failure_mode == "no_answer_found"
    truncated = judge(s, text("3 × 2.40 = 7.20, then", finish="length"))
    assert truncated.failure_mode == "token_limit"


def test_reason_math_key_values_and_inconsistent():
    s = scenario("reasonmath-15", "kv-rectangle")
    assert judge(s, text("ANSWER: width=6, length=11, area=66")).score == 100
    near = judge(s, text("ANSWER: width=6, length=11, area=67"))
    assert near.score == pytest.approx(66.67, abs=0.01) and near.status == "partial"
    i = scenario("reasonmath-15", "inconsistent-triangle")
    assert judge(i, text("Sum is 195.\nANSWER: inconsistent")).score == 100
    assert judge(i, text("ANSWER: 95")).score == 0


# --- data_extract ---------------------------------------------------------------------------------
def test_data_extract_fields_and_anchors():
    s = scenario("dataextract-15", "invoice-lines")
    reordered = ('{"lines": [{"sku": "S-03", "qty": 3, "unit_price": 1.2, "amount": 3.6},'
                 '{"sku": "C-12", "qty": 2, "unit_price": 9.9, "amount": 19.80},'
                 '{"sku": "D-77", "qty": 1, "unit_price": 89, "amount": 89.001}]}')
    assert judge(s, text(reordered)).score == 100  # matched by sku, numbers within 0.01
    near = judge(s, text(reordered.replace('"qty": 3', '"qty": 2').replace('"amount": 3.6', '"amount": 2.4')))
    assert near.status == "fail" or near.score < 85
    assert near.failure_mode == "wrong_answer"
    n = scenario("dataextract-15", "missing-fields")
    filled = ('{"sender": "Lagerhaus GmbH", "tracking_number": "1Z999AA10123456784", "weight_kg": 2.4,'
              ' "delivery_date": "unknown", "signature_required": false}')
    assert judge(n, text(filled)).score == 60  # invented values for nulls are wrong
    assert judge(n, text("[1, 2]")).failure_mode == "schema_violation"
    assert judge(n, text("sender: Lagerhaus")).failure_mode == "invalid_json"


# --- answer_match (BenchLocal) --------------------------------------------------------------------
def test_answer_match():
    pack = loader.load_pack(Path(__file__).resolve().parents[1] / "data" / "benchlocal_sample.jsonl")
    s = next(x for x in pack.scenarios if x.id == "capital")
    assert judge(s, text("Paris.")).score == 100
    assert judge(s, text("Lyon")).failure_mode == "wrong_answer"


# --- the pack data itself -------------------------------------------------------------------------
def test_every_pack_has_15_scenarios_with_reference_replies_and_no_free_points():
    assert sorted(PACKS) == ["dataextract-15", "instructfollow-15", "reasonmath-15", "structoutput-15", "toolcall-15"]
    for pack in PACKS.values():
        assert len(pack.scenarios) == 15 and len({s.category for s in pack.scenarios}) >= 4
        for s in pack.scenarios:
            assert s.reference_turns, s.id
            assert judge(s, text("OK")).status == "fail", f"{pack.meta.id}/{s.id} passes on 'OK'"
    instruct = PACKS["instructfollow-15"].scenarios
    assert all(4 <= len(s.verifier.asserts) <= 6 for s in instruct)
