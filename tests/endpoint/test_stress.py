"""harness.endpoint.stress: the pure haystack pieces, the probes against a llama.cpp-like double
(one that finds needles and refuses long prompts, one that errs or hangs on malformed requests,
one that dies mid-run), and the real embedded llama-server."""

from __future__ import annotations

import json
import time

import pytest

from harness.cli.main import main
from harness.endpoint.client import EndpointClient, RetryPolicy
from harness.endpoint.stress import (
    StressSettings,
    build_filler,
    filler_sentences,
    format_stress,
    join,
    make_needle,
    needle_found,
    place_needle,
    run_stress,
)
from tests.doubles.model_server import Raw, Reply, Request
from tests.doubles.stress_server import StressServer, word_count

QUICK = {"depths_pct": [25, 75], "fills_pct": [25, 75]}


def _client(server: StressServer, timeout_s: float = 10) -> EndpointClient:
    return EndpointClient(server.base_url, timeout_s=timeout_s, retry=RetryPolicy(max_retries=0), max_connections=8)


def _checks(result) -> dict[str, object]:
    return {check.name: check for check in result.probes}


# ---------------------------------------------------------------- pure pieces

def test_filler_is_deterministic_varied_and_sized_in_tokens():
    assert filler_sentences(7, 30) == filler_sentences(7, 30)
    assert filler_sentences(7, 10) == filler_sentences(7, 30)[:10]  # a longer run extends a shorter one
    assert filler_sentences(7, 30) != filler_sentences(8, 30)
    words = join(filler_sentences(7, 200)).lower().split()
    assert len(set(words)) > 60 and max(words.count(w) for w in set(words)) < len(words) / 5  # prose, not one word
    for target in (50, 333, 2000):
        sentences = build_filler(7, target, word_count)
        assert target - 25 < word_count(join(sentences)) <= target  # the longest prefix that fits
        assert sentences == filler_sentences(7, len(sentences))


def test_needle_value_comes_from_the_seed_and_matching_ignores_case_and_spacing():
    value, sentence = make_needle(42)
    assert make_needle(42) == (value, sentence) and make_needle(43)[0] != value
    assert value in sentence and sentence.startswith("The secret passphrase")
    colour, animal, number = value.split()
    assert needle_found(f"It is {colour.upper()}  {animal}-{number}!", value)
    assert not needle_found(f"It is {colour} {animal}", value)


@pytest.mark.parametrize("depth", [0, 25, 50, 90, 100])
def test_needle_sits_at_its_depth_in_tokens(depth):
    sentences = build_filler(3, 1000, word_count)
    _, needle = make_needle(3)
    text, landed = place_needle(sentences, needle, depth, word_count)
    before = text[: text.index(needle)]
    measured = 100 * word_count(before) / word_count(join(sentences))
    assert abs(measured - depth) < 2.5 and abs(landed - measured) < 0.01
    assert text.replace(needle + " ", "").replace(" " + needle, "") == join(sentences)


# ---------------------------------------------------------------- against the double

def test_llama_like_double_passes_every_probe_and_the_grid():
    with StressServer(n_ctx=1024, slots=2) as server, _client(server) as client:
        result = run_stress(client, StressSettings(seed=5, **QUICK))
    assert result.exit_code == 0, format_stress(result)
    assert result.server_died is None and result.needle.token_count_method == "tokenize"
    assert [(c.depth_pct, c.fill_pct) for c in result.grid] == [(25, 25), (75, 25), (25, 75), (75, 75)]
    assert all(c.passed and c.error is None for c in result.grid)
    usable = 1024 - 32
    for cell in result.grid:  # sized in tokens against the context less the answer budget
        assert abs(cell.prompt_tokens - cell.fill_pct / 100 * usable) <= 20
        assert abs(cell.needle_at_pct - cell.depth_pct) < 5
    checks = _checks(result)
    assert "prompt 992 + max_tokens 32 = 1024" in checks["exact fill answered (prompt + max_tokens = context)"].detail
    one_over = checks["one token over refused (4xx) or truncated (length)"]
    assert "prompt 993 + max_tokens 32 = 1025" in one_over.detail and "finish_reason length" in one_over.detail
    assert "HTTP 400" in checks["prompt longer than the context refused (4xx)"].detail
    assert len(result.concurrent_latencies_s) == 3
    assert "0 slot(s) still processing" in checks["cancelled streams free their slots"].detail
    malformed = [c for c in result.probes if c.name.startswith("malformed")]
    assert len(malformed) == 6 and all("HTTP 40" in c.detail for c in malformed)
    text = format_stress(result)
    assert "PASS" in text and "Server checks: " in text and "depth \\ fill" in text


def test_missed_needles_are_capability_not_server_failures():
    def forgetful(request: Request):
        body = request.json
        if isinstance(body, dict) and "passphrase" in json.dumps(body.get("messages")):
            return Reply(content="I do not know.")
        return None

    with StressServer(fault=forgetful) as server, _client(server) as client:
        result = run_stress(client, StressSettings(seed=5, depths_pct=[50], fills_pct=[25]))
    assert not result.grid[0].passed and result.grid[0].error is None
    retrieval = _checks(result)["needle retrieved (depth/fill)"]
    assert retrieval.kind == "capability" and not retrieval.passed
    assert result.exit_code == 0  # a weak model is not a broken server


def test_malformed_request_answered_500_or_hanging_fails_its_probe_with_evidence():
    def fragile(request: Request):
        body = request.json
        if body is None:  # the invalid JSON body
            return Raw(500, b"Internal Server Error")
        if isinstance(body, dict) and body.get("temperature") == "hot":
            time.sleep(2.5)  # past the client's timeout: a hang
        if isinstance(body, dict) and ("messages" not in body or str(body.get("model")).startswith("no-such")):
            return Reply(content="OK")  # answered instead of refused
        return None

    with StressServer(fault=fragile) as server, _client(server, timeout_s=1.5) as client:
        result = run_stress(client, StressSettings(seed=5, depths_pct=[50], fills_pct=[25], timeout_s=1.5))
    checks = _checks(result)
    invalid = checks["malformed request refused with an error: invalid JSON body"]
    assert not invalid.passed and "HTTP 500: Internal Server Error" in invalid.detail
    hot = checks["malformed request refused with an error: temperature is a string"]
    assert not hot.passed and "hang" in hot.detail
    missing = checks["malformed request refused with an error: messages missing"]
    assert not missing.passed and missing.detail.startswith("accepted, not refused")
    unknown = checks["malformed request refused with an error or answered: unknown model"]  # one-model servers do that
    assert unknown.passed and "HTTP 200" in unknown.detail
    assert checks["malformed request refused with an error: messages is a string"].passed
    assert result.exit_code == 3 and result.server_died is None


def test_slot_still_held_after_the_hang_up_fails_the_cancel_probe():
    with StressServer(hold_after_hangup_s=2.0) as server, _client(server) as client:
        result = run_stress(client, StressSettings(seed=5, depths_pct=[50], fills_pct=[25]))
    cancel = _checks(result)["cancelled streams free their slots"]
    assert not cancel.passed and "limit" in cancel.detail
    assert result.ttft_after_cancel_s > 1.5 > result.idle_ttft_s
    assert result.exit_code == 1


def test_server_that_dies_mid_run_is_reported_with_its_state():
    seen = []

    def second_needle(request: Request) -> bool:
        seen.append(request)
        return "passphrase" in json.dumps(request.json) and sum("passphrase" in json.dumps(r.json) for r in seen) == 3

    def state():
        return "container exited with code 139", ["loading model", "Segmentation fault"]

    with StressServer(die_on=second_needle) as server, _client(server) as client:
        result = run_stress(client, StressSettings(seed=5, **QUICK), server_state=state)
    assert result.server_died.startswith("server died during needle grid: ")
    assert "refused" in result.server_died.lower() or "unreachable" in result.server_died
    assert result.server_died.endswith("container exited with code 139")
    assert result.log_tail[-1] == "Segmentation fault"
    assert result.exit_code >= 1 and "server died during needle grid" in format_stress(result)


def test_cli_reports_a_dying_url_server_on_stderr_and_exits_non_zero(tmp_path, capsys):
    def on_concurrent(request: Request) -> bool:
        return "[request 1 " in json.dumps(request.json)

    out = tmp_path / "stress.json"
    with StressServer(die_on=on_concurrent) as server:
        code = main(["stress", server.base_url, "--depths", "50", "--fills", "25", "--seed", "9",
                     "--timeout-s", "10", "--save-json", str(out)])
    captured = capsys.readouterr()
    assert code >= 1
    assert "[stress] server died during 3 concurrent requests" in captured.err
    saved = json.loads(out.read_text())
    assert saved["kind"] == "stress" and saved["schema_version"] == 1 and saved["needle"]["seed"] == 9
    assert saved["server_died"].startswith("server died during 3 concurrent requests")
    assert saved["endpoint"] == server.base_url and saved["profile"] is None


def test_cli_refuses_bad_percents_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stress", "http://127.0.0.1:9", "--depths", "25,150"])
    said = capsys.readouterr().err
    assert exc.value.code == 2 and "expected comma-separated percents: must be >= 1 and <= 100, got '150'" in said


# ---------------------------------------------------------------- the real server

@pytest.mark.docker
@pytest.mark.server
def test_real_llama_server_survives_the_boundary_probes(embedded_server, tmp_path, capsys):
    out = tmp_path / "stress.json"
    main(["stress", embedded_server.base_url, "--depths", "25,75", "--fills", "10,25", "--seed", "11",
          "--save-json", str(out)])
    result = json.loads(out.read_text())
    printed = capsys.readouterr().out
    checks = {c["name"]: c for c in result["probes"]}
    assert result["server_died"] is None and result["n_ctx_per_slot"] == 1024 and result["slots"] == 2, printed
    assert result["needle"]["token_count_method"] == "tokenize"
    assert len(result["grid"]) == 4 and all(c["error"] is None for c in result["grid"])
    # llama.cpp answers a body that is not JSON with a 500 and a JSON error (its parser's exception is not
    # mapped to a 400): answered, healthy after, and the wrong class said in the detail and the notes.
    invalid = checks["malformed request refused with an error: invalid JSON body"]
    assert invalid["detail"].startswith("HTTP 4") or "where a 4xx is due" in invalid["detail"], invalid
    failed = [c for c in checks.values() if c["kind"] == "server" and not c["passed"]]
    assert not failed, printed
    assert "exceeds the available context" in checks["prompt longer than the context refused (4xx)"]["detail"]
    exact = checks["exact fill answered (prompt + max_tokens = context)"]
    assert "prompt 992 + max_tokens 32 = 1024" in exact["detail"]
    assert "/slots: 0 slot(s) still processing" in checks["cancelled streams free their slots"]["detail"]


def test_a_500_with_a_json_error_body_is_answered_but_said_while_a_bare_500_fails():
    def parser_error(request: Request):
        if request.json is None:  # the invalid JSON body: a server that answers on purpose, with the wrong class
            return Raw(500, b'{"error": {"code": 500, "message": "parse error"}}')
        return None

    with StressServer(fault=parser_error) as server, _client(server, timeout_s=5) as client:
        result = run_stress(client, StressSettings(seed=5, depths_pct=[50], fills_pct=[25], timeout_s=5))
    invalid = _checks(result)["malformed request refused with an error: invalid JSON body"]
    assert invalid.passed and "answered 500 where a 4xx is due" in invalid.detail
    assert any("invalid JSON body" in note and "HTTP 500" in note for note in result.notes)
