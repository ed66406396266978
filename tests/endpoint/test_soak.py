"""harness.endpoint.soak (and the `soak` verb, harness.serving.stats): drift math, soaks against the
scripted server (steady, failing mid-way, a dying or restarting container, fresh mode, Ctrl-C), and a
short soak of the real embedded llama-server with its container watched through Docker."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from harness.cli import soak as soak_cli
from harness.cli.main import build_parser, main
from harness.endpoint.client import EndpointClient, RetryPolicy
from harness.endpoint.soak import (
    DEFAULT_MIX,
    ServerControl,
    SoakResult,
    SoakSettings,
    drift,
    format_soak,
    run_soak,
    t_quantile_975,
    write_soak,
)
from harness.errors import Interrupted
from harness.serving.stats import ContainerSnapshot
from tests.doubles.model_server import Reply, Request, ScriptedModelServer, json_raw

RECORDED = Path(__file__).resolve().parent.parent / "data" / "nvidia-smi"
TOKEN_DELAY_S = 0.005  # the scripted decode speed: ~200 tokens/s


def _respond(request: Request):
    """A model that decodes up to max_tokens at TOKEN_DELAY_S per token and calls the tool when offered one."""
    body = request.json
    prompt_tokens = len(body["messages"][-1]["content"].split()) + 10
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 0}
    if body.get("tools"):
        return Reply(content=None, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
                     usage={**usage, "completion_tokens": 9})
    tokens = body["max_tokens"]
    return Reply(content=" ".join(f"t{i}" for i in range(tokens)), finish_reason="length",
                 usage={**usage, "completion_tokens": tokens}, chunk_delay_s=TOKEN_DELAY_S,
                 timings={"prompt_per_second": 5000.0, "prompt_n": float(prompt_tokens)})


def _client(url: str) -> EndpointClient:
    return EndpointClient(url, timeout_s=10, retry=RetryPolicy(max_retries=0))


# ---------------------------------------------------------------- drift math

def test_drift_recovers_a_known_slope_inside_its_interval():
    noise = random.Random(7)
    times = [30.0 * i for i in range(40)]  # 20 minutes of 30 s windows
    values = [100.0 - 12.0 * t / 3600 + noise.gauss(0, 0.5) for t in times]  # -12 tok/s per hour
    found = drift(times, values)
    assert found.n == 40 and found.low < -12.0 < found.high
    assert found.slope_per_hour == pytest.approx(-12.0, abs=1.5) and found.falls and not found.rises
    assert found.pct_per_hour == pytest.approx(found.slope_per_hour / values[0] * 100)


def test_an_exact_line_has_a_zero_width_interval_and_a_flat_series_spans_zero():
    exact = drift([0, 60, 120, 180], [500, 510, 520, 530])  # +10 MiB a minute
    assert exact.slope_per_hour == pytest.approx(600) and exact.low == pytest.approx(600) == exact.high
    assert exact.rises
    noise = random.Random(3)
    flat = drift(list(range(0, 600, 30)), [50 + noise.uniform(-1, 1) for _ in range(20)])
    assert flat.low < 0 < flat.high and not flat.rises and not flat.falls


def test_drift_needs_points_and_skips_missing_windows():
    assert drift([0.0], [1.0]) is None and drift([0.0, 1.0], [None, 2.0]) is None
    two = drift([0.0, 3600.0], [10.0, 12.0])
    assert two.slope_per_hour == pytest.approx(2.0) and two.low is None and two.high is None
    assert drift([0, 1, 2, 3], [1.0, None, 3.0, 4.0]).n == 3


def test_t_quantiles_match_the_tables():
    assert t_quantile_975(1) == 12.706 and t_quantile_975(10) == 2.228
    assert t_quantile_975(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)
    assert t_quantile_975(10_000) == pytest.approx(1.960, abs=1e-3)


# ---------------------------------------------------------------- scripted soaks

def test_cli_soak_of_a_steady_server_saves_windows_of_every_kind(tmp_path, capsys):
    saved = tmp_path / "soak.json"
    with ScriptedModelServer(_respond, slots=2, n_ctx=2048) as server:
        code = main(["soak", server.base_url, "--seconds", "6", "--window-s", "2", "--max-tokens", "32",
                     "--save-json", str(saved)])
        sent = [r.json for r in server.requests if r.wire]
    assert code == 0
    result = SoakResult.model_validate_json(saved.read_text())
    assert result.kind == "soak" and result.settings.concurrency == 2 and result.ended_early is None
    assert len(result.windows) == 3 and all(w.requests > 0 and w.errors == 0 for w in result.windows)
    assert result.errors_total == 0 and result.requests_total == sum(w.requests for w in result.windows)
    assert set().union(*(w.requests_by_kind for w in result.windows)) == set(DEFAULT_MIX)
    decode = [w.decode_tps.median for w in result.windows if w.decode_tps]
    assert decode and all(40 < rate < 1 / TOKEN_DELAY_S * 1.1 for rate in decode)  # slower on a busy machine
    assert all(w.prompt_tps.median == 5000.0 for w in result.windows if w.prompt_tps)
    assert result.tool_calls_returned > 0 and result.decode_drift is not None and result.mem_drift is None
    # the long prompt is sized to about half the per-slot context (2048) after one calibration request
    long_prompts = [len(b["messages"][0]["content"].split()) + 10 for b in sent if b["max_tokens"] == 16]
    assert long_prompts and all(abs(n - 1024) < 50 for n in long_prompts)
    assert any(b.get("ignore_eos") for b in sent)  # the double answers /props like llama.cpp
    out = capsys.readouterr().out
    assert "decode drift:" in out and "GPU: n/a: nvidia-smi not found" in out and f"saved {saved}" in out


def test_errors_mid_soak_are_counted_in_their_windows():
    started = time.monotonic()

    def failing_later(request: Request):
        if time.monotonic() - started > 1.5:
            return json_raw(500, {"error": {"message": "slot crashed"}})
        return _respond(request)

    settings = SoakSettings(minutes=3 / 60, window_s=1, max_tokens=16)
    with ScriptedModelServer(failing_later, slots=2) as server, _client(server.base_url) as client:
        result = run_soak(client, settings)
    assert len(result.windows) == 3 and result.ended_early is None  # /health still answers: not dead
    assert result.windows[0].errors == 0 and result.windows[0].requests > 0
    assert result.windows[-1].errors == result.windows[-1].requests > 0
    assert "HTTP 500" in result.windows[-1].first_error and "slot crashed" in result.windows[-1].first_error
    assert result.errors_total == sum(w.errors for w in result.windows) > 0
    assert "errors" in format_soak(result) and "(first: " in format_soak(result)


class FakeContainer:
    """Stands in for Docker: the container's state at each read, in order (the last repeats)."""

    def __init__(self, states: list[dict]):
        self.states, self.reads, self.restarted = states, 0, 0

    def snapshot(self) -> ContainerSnapshot:
        state = self.states[min(self.reads, len(self.states) - 1)]
        self.reads += 1
        values = {"container": "srv", "running": True, "status": "running", "restart_count": 0,
                  "started_at": f"start-{self.restarted}", "mem_mib": 100.0}
        return ContainerSnapshot(**{**values, **state})

    def restart(self) -> float:
        self.restarted += 1
        return 0.25


def test_a_restart_is_counted_and_a_dead_server_ends_the_soak_with_what_was_measured(tmp_path):
    died = {"running": False, "status": "exited", "exit_code": 137, "oom_killed": True, "mem_mib": None}
    fake = FakeContainer([{}, {"mem_mib": 120.0}, {"restart_count": 1, "mem_mib": 90.0}, died])
    control = ServerControl(snapshot=fake.snapshot, log_tail=lambda: "loading model\nout of memory")
    settings = SoakSettings(minutes=1, window_s=0.5, max_tokens=16)
    with ScriptedModelServer(_respond) as server, _client(server.base_url) as client:
        result = run_soak(client, settings, server=control)
    assert len(result.windows) == 3 and result.duration_s < 5
    assert [w.restarts for w in result.windows] == [0, 1, 0] and result.restarts_total == 1
    assert [w.mem_mib for w in result.windows] == [120.0, 90.0, None]
    assert result.ended_early.startswith("server container was OOM-killed (exited)")
    assert "out of memory" in result.log_tail
    reread = SoakResult.model_validate_json(write_soak(result, tmp_path / "r.json").read_text())
    assert reread.ended_early == result.ended_early and len(reread.windows) == 3
    assert "ENDED EARLY" in format_soak(result) and "out of memory" in format_soak(result)


def test_fresh_mode_restarts_between_windows_without_counting_them_as_crashes():
    fake = FakeContainer([{}])  # every restart gives a new start time, as a recreated container does
    control = ServerControl(snapshot=fake.snapshot, log_tail=lambda: "", restart=fake.restart)
    settings = SoakSettings(minutes=1.5 / 60, window_s=0.5, mode="fresh", max_tokens=16)
    with ScriptedModelServer(_respond) as server, _client(server.base_url) as client:
        result = run_soak(client, settings, server=control)
    assert fake.restarted == 2 and result.fresh_restarts == 2 and result.restarts_total == 0
    assert [w.fresh_restart_s for w in result.windows] == [None, 0.25, 0.25]
    assert result.ended_early is None and all(w.requests > 0 for w in result.windows)


def test_gpu_figures_per_window_from_a_recorded_two_gpu_box(tmp_path):
    # nvidia-smi played by a script printing recorded output (no GPU here): the soak's wiring is real
    fake_smi = tmp_path / "nvidia-smi"
    fake_smi.write_text(f"#!/bin/sh\ncat {RECORDED / 'two-gpus-power-cap.csv'}\n")
    fake_smi.chmod(0o755)
    settings = SoakSettings(minutes=1 / 60, window_s=0.5, max_tokens=16, gpu_interval_s=0.05)
    with ScriptedModelServer(_respond) as server, _client(server.base_url) as client:
        result = run_soak(client, settings, nvidia_smi=str(fake_smi))
    assert [g.index for g in result.gpu.gpus] == [0, 1] and result.gpu.series
    assert result.gpu.generated_tokens == sum(w.completion_tokens for w in result.windows) > 0
    assert result.gpu.j_per_token == pytest.approx(result.gpu.energy_j / result.gpu.generated_tokens)
    for window in result.windows:
        assert window.vram_mib == 21874 + 20310 and window.gpu.series == [] and window.gpu.j_per_token > 0
    assert "sw_power_cap 100%" in format_soak(result) and "J/token" in format_soak(result)


def test_fresh_mode_needs_a_profile(capsys):
    assert main(["soak", "http://127.0.0.1:9", "--mode", "fresh", "--seconds", "1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --mode fresh restarts the server between windows, so it needs a PROFILE, not a URL"]


def test_ctrl_c_keeps_and_saves_the_windows_measured(tmp_path, monkeypatch, capsys):
    def press_ctrl_c_at_the_second_window(message: str) -> None:
        if message.startswith("window 2 "):
            raise KeyboardInterrupt

    monkeypatch.setattr(soak_cli, "_log", press_ctrl_c_at_the_second_window)
    saved = tmp_path / "soak.json"
    with ScriptedModelServer(_respond) as server:
        args = build_parser().parse_args(["soak", server.base_url, "--minutes", "5", "--window-s", "0.5",
                                          "--max-tokens", "16", "--save-json", str(saved)])
        with pytest.raises(Interrupted, match="after 2 window"):
            soak_cli.cmd_soak(args)
    result = json.loads(saved.read_text())
    assert result["ended_early"].startswith("interrupted (Ctrl-C)") and len(result["windows"]) == 2
    assert result["duration_s"] < 30 and result["requests_total"] > 0


# ---------------------------------------------------------------- the real server and its container

@pytest.mark.docker
@pytest.mark.server
def test_docker_stats_of_the_real_server_container(embedded_server):
    from harness.serving import compose as serving
    from harness.serving import stats
    from harness.serving.rigs import client_for
    from tests.conftest import COMPOSE_DIR

    profile = embedded_server.profile
    deployment = serving.Deployment(profile, COMPOSE_DIR, embedded_server.config_path.parent / f".env.{profile.id}")
    container = serving.server_container(deployment)
    snap = stats.snapshot(client_for(profile), container.name)
    assert snap.running and snap.status == "running" and snap.restart_count == 0 and snap.started_at
    assert snap.mem_mib > 10 and snap.mem_limit_mib >= snap.mem_mib  # the model alone is ~100 MiB
    assert stats.restarts_between(snap, snap) == 0
    tail = stats.log_tail(client_for(profile), container.name, lines=20).lower()
    assert 0 < len(tail.splitlines()) <= 20 and ("slot" in tail or "server" in tail), tail  # llama-server's own lines


@pytest.mark.docker
@pytest.mark.server
def test_real_server_soak_watching_its_container(embedded_server, tmp_path):
    from harness.serving import compose as serving
    from tests.conftest import COMPOSE_DIR

    profile = embedded_server.profile
    deployment = serving.Deployment(profile, COMPOSE_DIR, embedded_server.config_path.parent / f".env.{profile.id}")
    # small requests: 2 cores shared with other work; a request longer than a window leaves it empty
    settings = SoakSettings(minutes=15 / 60, window_s=5, max_tokens=16, long_prompt_tokens=128, timeout_s=60)
    with EndpointClient(embedded_server.base_url, timeout_s=60, retry=RetryPolicy(max_retries=0)) as client:
        result = run_soak(client, settings, profile_id=profile.id, server=soak_cli.server_control(deployment))
    path = write_soak(result, tmp_path / "soak.json")
    result = SoakResult.model_validate_json(path.read_text())
    print("\n" + format_soak(result))
    assert result.server_kind == "llama.cpp" and result.slots == 2 and result.n_ctx_per_slot == 1024
    assert result.settings.concurrency == 2 and result.settings.long_prompt_tokens == 128
    assert len(result.windows) == 3 and result.ended_early is None
    assert result.errors_total == 0 and result.restarts_total == 0 and result.requests_total >= 4
    assert all(w.mem_mib and w.mem_mib > 10 for w in result.windows)
    assert any(w.decode_tps for w in result.windows) and any(w.prompt_tps for w in result.windows)
    assert result.mem_drift is not None and result.mem_drift.n == 3
    assert Path(path).stat().st_size > 0
