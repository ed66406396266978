"""One test per class of verdict error in our deterministic packs: near misses that used to
pass, right answers that used to fail. Each reply is written here, against the pack data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.packs import loader
from harness.packs.runner import mock_result
from harness.packs.schema import Reply, Scenario, ToolCallRecord
from harness.packs.verifiers import judge

PACKS_DIR = Path(__file__).resolve().parents[2] / "packs"


def scenario(pack_id: str, scenario_id: str) -> Scenario:
    return next(s for s in loader.load_pack(PACKS_DIR / pack_id).scenarios if s.id == scenario_id)


def text(content: str) -> Reply:
    return Reply(content=content, raw_content=content, content_source="content", finish_reason="stop")


def calls(s: Scenario, *made: tuple[str, dict], final: str = "") -> Reply:
    records = [ToolCallRecord(turn=i, name=n, arguments=a, result=mock_result(s, n, a))
               for i, (n, a) in enumerate(made, start=1)]
    return Reply(content=final, tool_calls=records, finish_reason="stop", turns=len(made) + 1)


def passes(s: Scenario, reply: Reply) -> bool:
    return judge(s, reply).status == "pass"


# --- near misses that must fail -----------------------------------------------------------------
def test_a_side_effect_done_twice_fails():
    s = scenario("toolcall-15", "param-email")
    email = ("send_email", {"to": "dana@example.org", "subject": "Invoice 1182", "body": "Invoice 1182 is paid."})
    assert passes(s, calls(s, email, final="Sent."))
    twice = judge(s, calls(s, email, email, final="Sent."))
    assert twice.status == "fail" and "at most 1 send_email calls: made 2" in twice.detail
    r = scenario("toolcall-15", "chain-refund")
    refund = ("refund_order", {"order_id": "A-7731", "amount": 84.5})
    chain = (("lookup_customer", {"email": "bob@example.com"}), ("get_order", {"order_id": "A-7731"}))
    assert judge(r, calls(r, *chain, refund, refund, final="Refunded.")).score == 0  # a double refund is core


def test_mocks_answer_only_the_arguments_they_describe():
    s = scenario("toolcall-15", "chain-weather-calc")
    assert mock_result(s, "calculator", {"expression": "(25 * 1.8) + 32"}) == {"value": 77}
    assert mock_result(s, "calculator", {"expression": "25 + 32"}) == {"value": 57}
    assert "error" in mock_result(s, "calculator", {"expression": "__import__('os').getcwd()"})
    weather = ("get_weather", {"city": "Denver"})
    # the final answer says 77 °F, but the call computed something else
    wrong = calls(s, weather, ("calculator", {"expression": "25 + 32"}), final="It is 77 °F in Denver.")
    assert judge(s, wrong).score == 0
    assert passes(s, calls(s, weather, ("calculator", {"expression": "25*9/5+32"}), final="77 °F in Denver."))
    fx = scenario("toolcall-15", "chain-flight-fx")
    assert mock_result(fx, "convert_currency", {"amount": 129, "from_currency": "EUR", "to_currency": "GBP"}) \
        != mock_result(fx, "convert_currency", {"amount": 98, "from_currency": "EUR", "to_currency": "GBP"})
    assert "error" in mock_result(scenario("toolcall-15", "select-weather"), "get_weather", {"city": "Paris"})


def test_an_empty_result_followed_by_an_invented_answer_fails():
    s = scenario("toolcall-15", "recover-empty-search")
    search = ("web_search", {"query": "zorbulax quantum widget"})
    invented = judge(s, calls(s, search, final="No results came back, but a zorbulax quantum widget is a "
                                              "sensor used in quantum labs."))
    assert invented.status == "fail" and "invents no description" in invented.detail
    assert passes(s, calls(s, search, final="No results came back, so I can't say what it is."))


def test_a_value_with_the_wrong_unit_fails():
    s = scenario("toolcall-15", "select-weather")
    weather = ("get_weather", {"city": "Lisbon"})
    assert not passes(s, calls(s, weather, final="It's 18 °F and sunny in Lisbon."))
    assert not passes(s, calls(s, weather, final="It's 18% humid and sunny."))
    assert passes(s, calls(s, weather, final="It's 18 °C and sunny in Lisbon."))
    assert passes(s, calls(s, weather, final="Sunny, 18 degrees."))
    fx = scenario("toolcall-15", "chain-flight-fx")
    made = (("search_flights", {"origin": "BER", "destination": "MAD"}),
            ("convert_currency", {"amount": 98, "from_currency": "EUR", "to_currency": "GBP"}))
    assert not passes(fx, calls(fx, *made, final="IB3669 is €83.30."))
    assert passes(fx, calls(fx, *made, final="IB3669, about £83.30."))


@pytest.mark.parametrize("scenario_id, near, right", [
    ("headers-report", "## Summary\nWe moved. It went fine.\n\n## Risks\nNone known.\n\n## Next steps\nRelax.",
     "## Summary\nWe moved.\n\n## Risks\nNone known.\n\n## Next steps\nRelax."),
    ("paragraphs-two", "Bike history began in 1817, and maintenance kept them going.\n\nModern bikes are light.",
     "Bike history began in 1817 with a push frame.\n\nSimple maintenance keeps modern bikes going."),
    ("title-and-hashtags", "Dawn Over The Bay\nWe watched the sunrise. Then we had coffee.\n#sunrise #bay",
     "Dawn Over The Bay\nWe watched the sunrise from the pier.\n#sunrise #bay"),
    ("json-free-colon-lines", "Formula: H2O\nBoiling point: 212 °F (100 °C)\nFreezing point: 32 °F",
     "Formula: H2O\nBoiling point: 100 °C\nFreezing point: 0 °C"),
])
def test_every_constraint_of_an_instruction_is_checked(scenario_id, near, right):
    s = scenario("instructfollow-15", scenario_id)
    assert not passes(s, text(near))
    assert passes(s, text(right))


@pytest.mark.parametrize("scenario_id, near", [
    ("impossible-count", "I cannot find five, but the even primes include 2, 3, 5, 7 and 11."),
    ("impossible-count", "Only 2 is truly prime, but here you go:\n2\n4\n6\n8\n10"),
    ("impossible-contradiction", "That's contradictory, but here's my best attempt: The small dog ran home."),
])
def test_an_impossible_task_is_not_detected_by_a_keyword(scenario_id, near):
    assert not passes(scenario("instructfollow-15", scenario_id), text(near))


def test_sql_needs_the_requested_alias_and_the_exact_boundary():
    group = scenario("structoutput-15", "sql-group")
    assert not passes(group, text("SELECT dept, AVG(salary) FROM employees GROUP BY dept ORDER BY 2 DESC"))
    assert passes(group, text("SELECT dept, AVG(salary) AS avg_salary FROM employees GROUP BY dept ORDER BY 2 DESC"))
    where = scenario("structoutput-15", "sql-filter")
    for wrong in ("salary >= 75000 AND hired < '2021-01-01'", "salary > 75000 AND hired <= '2021-01-01'"):
        assert not passes(where, text(f"SELECT name FROM employees WHERE {wrong} ORDER BY name"))


def test_answer_lines_that_contradict_each_other_fail():
    s = scenario("reasonmath-15", "shop-change")
    verdict = judge(s, text("ANSWER: 11.05\nNo wait, 20 - 9.05.\nANSWER: 10.95"))
    assert verdict.status == "fail" and "inconsistent" in verdict.detail
    assert passes(s, text("ANSWER: 10.95\nSo she gets:\nANSWER: $10.95"))  # the same answer twice agrees


def test_one_wrong_extracted_field_fails_our_packs_but_not_upstream_rules():
    s = scenario("dataextract-15", "event-tickets")
    one_wrong = ('{"event": "Jazz Night", "venue": "Blue Hall", "date": "2025-09-20", "doors": "19:30", "tickets":'
                 ' [{"tier": "Standard", "price_eur": 25, "remaining": 120}, {"tier": "VIP", "price_eur": 60,'
                 ' "remaining": 80}]}')
    verdict = judge(s, text(one_wrong))
    assert verdict.status != "pass" and verdict.failure_mode == "wrong_answer" and "9/10 fields right" in verdict.detail
    assert verdict.score >= 60  # the field share stays the score (capped below a pass)
    upstream = s.model_copy(update={"verifier": s.verifier.model_copy(update={"require_all": False})})
    assert judge(upstream, text(one_wrong)).score == 90


# --- right answers that must pass ---------------------------------------------------------------
@pytest.mark.parametrize("scenario_id, answer", [
    ("fraction-tank", "120 litres"), ("train-meet", "2 h"), ("unit-speed", "24.0 km/h"), ("ages", "40 years"),
    ("remainder", "remainder = 3"), ("inconsistent-triangle", "INCONSISTENT (the angles sum to 195°)"),
    ("kv-rectangle", "width = 6 cm, length = 11 cm, area = 66 cm²"),
    ("kv-rectangle", "width=6, length=11, area=66 cm^2"),
    ("mix-coffee", "5 kg"), ("logic-order", "**Bob** finishes first"), ("shop-change", "$10.95"),
])
def test_a_correct_value_with_a_unit_or_qualifier_passes(scenario_id, answer):
    assert passes(scenario("reasonmath-15", scenario_id), text(f"Working shown above.\nANSWER: {answer}"))


@pytest.mark.parametrize("scenario_id, answer", [
    ("train-meet", "2 minutes"), ("unit-speed", "24 m/s"), ("kv-rectangle", "width=6, length=11, area=66 cm"),
    ("train-meet", "2 or 3"), ("logic-order", "Bob or Ann"),
])
def test_a_different_quantity_or_a_hedge_still_fails(scenario_id, answer):
    assert not passes(scenario("reasonmath-15", scenario_id), text(f"ANSWER: {answer}"))


@pytest.mark.parametrize("scenario_id, final", [
    ("refuse-no-tool", "Sorry, I can’t make reservations with the tools I have."),
    ("refuse-no-tool", "Booking restaurants is outside what I can do here."),
    ("restraint-thanks", "No problem, take care!"),
])
def test_refusals_in_other_words_pass(scenario_id, final):
    assert passes(scenario("toolcall-15", scenario_id), text(final))


def test_an_empty_result_reported_in_other_words_passes():
    s = scenario("toolcall-15", "recover-empty-search")
    search = ("web_search", {"query": "zorbulax"})
    assert passes(s, calls(s, search, final="The search came back empty."))
    assert passes(s, calls(s, search, final="I can’t find anything on that: zero results."))


def test_standard_title_case_passes():
    s = scenario("instructfollow-15", "title-and-hashtags")
    assert passes(s, text("Chasing the First Light\nThe sunrise lit the ridge.\n#sunrise #dawn"))
    assert not passes(s, text("Chasing the first light\nThe sunrise lit the ridge.\n#sunrise #dawn"))


@pytest.mark.parametrize("scenario_id, field, value", [
    ("resume-basics", "phone", "+46701234567"), ("nested-company", "hq", {"city": "Austin", "state": "Texas"}),
    ("receipt-totals", "merchant", "Cafe Molo"), ("event-tickets", "event", "JAZZ NIGHT"),
])
def test_extracted_fields_compare_by_meaning_not_spelling(scenario_id, field, value):
    s = scenario("dataextract-15", scenario_id)
    answer = dict(s.expected)
    answer[field] = value
    assert passes(s, text(json.dumps(answer)))
    answer[field] = "Springfield"
    assert not passes(s, text(json.dumps(answer)))


# --- found by replies written blind (tests/data/replies-blind): right answers that failed -------
def test_abbreviations_do_not_end_a_sentence():
    s = scenario("instructfollow-15", "headers-report")
    right = ("## Summary\nThe cutover (e.g. DNS and certs) is done.\n\n## Risks\nDr. Lee may be away at 9 a.m. on "
             "Monday.\n\n## Next steps\nWe ship by Fri. next week.")
    assert passes(s, text(right))
    two = "## Summary\nThe cutover is done. DNS moved.\n\n## Risks\nNone.\n\n## Next steps\nShip it."
    assert not passes(s, text(two))


@pytest.mark.parametrize("field, value, wrong", [
    ("invoice-header.invoice_number", "#INV-20931", "INV-20932"),  # the "#" the document prints
    ("email-meeting.time", "15:00:00", "15:30:00"),  # the same time with its seconds
])
def test_an_id_or_a_time_in_the_documents_own_form_passes(field, value, wrong):
    scenario_id, key = field.split(".")
    s = scenario("dataextract-15", scenario_id)
    answer = dict(s.expected)
    answer[key] = value
    assert passes(s, text(json.dumps(answer)))
    answer[key] = wrong
    assert not passes(s, text(json.dumps(answer)))


def test_a_number_given_as_a_string_and_an_american_spelling_pass():
    s = scenario("dataextract-15", "table-people")
    people = [dict(p, start_year=str(p["start_year"])) for p in s.expected["people"]]
    assert passes(s, text(json.dumps({"people": people})))
    people[0]["start_year"] = "2018"
    assert not passes(s, text(json.dumps({"people": people})))
    orders = scenario("dataextract-15", "order-status-list")
    answer = [dict(o, status=o["status"].replace("cancelled", "Canceled")) for o in orders.expected]
    assert passes(orders, text(json.dumps(answer)))
    answer[1]["status"] = "shipped"
    assert not passes(orders, text(json.dumps(answer)))


def test_a_refusal_in_yet_other_words_passes():
    s = scenario("toolcall-15", "refuse-no-tool")
    assert passes(s, text("That's not something I'm able to do from here: my tools cover weather and email."))
    assert not passes(s, text("Done: I booked a table for two at 8 pm."))
