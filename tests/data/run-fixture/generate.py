"""Writes the hand-made run directory beside this file (the report's unit-test fixture).

Every file is produced from the harness's own pydantic result models, so the fixture follows the
schemas; rerun it after a schema change: ``.venv/bin/python tests/data/run-fixture/generate.py``.
One profile completed (verify, throughput, packs, HumanEval+ results); one whose server never started.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.endpoint.throughput import (
    BenchSettings,
    ConcurrencyLevel,
    PromptLength,
    PromptRun,
    Spread,
    StreamRun,
    ThroughputResult,
)
from harness.endpoint.verify import Check, VerifyResult
from harness.evalplus.results import SampleProvenance, TaskVerdict, TestSetVerdict, build_result
from harness.files import write_text_atomic
from harness.overnight.allbench import STEP_NAMES, BenchOptions
from harness.overnight.manifest import (
    Manifest,
    ProfileProvenance,
    ProfileRecord,
    RunProvenance,
    StepRecord,
    StepStatus,
)
from harness.packs.runner import aggregate
from harness.packs.schema import (
    Reply,
    RunResult,
    Sampling,
    SamplingProvenance,
    Scenario,
    ScenarioResult,
    ThinkingState,
    TimeoutPolicy,
    VerifierSpec,
)
from harness.serving.envfile import render_env
from harness.serving.profiles import Profile

HERE = Path(__file__).resolve().parent
RUN_ID = "20260301-220000"
START = datetime(2026, 3, 1, 22, 0, 0, tzinfo=UTC)
PROFILE = "bench-smollm2"
BROKEN = "bench-broken"
IMAGE_ID = "sha256:5d2c4e0f8a1b3c6d9e7f0a2b4c6d8e1f3a5b7c9d0e2f4a6b8c1d3e5f7a9b0c2d"


def _profile(profile_id: str, name: str, model: str, ctx_size: int, port: int) -> Profile:
    return Profile(id=profile_id, source=Path("/srv/bench/models.conf"), NAME=name, MODEL=model,
                   MODELS_DIR=Path("/srv/bench/models"), CTX_SIZE=ctx_size, PARALLEL=2, BENCH_PARALLEL=1,
                   EXTRA_ARGS="--jinja --threads 4 --no-webui", IMAGE="benchwright/llama-server-cpu:b4600",
                   PORT=port, MAX_TOKENS=512)


def _provenance(profile: Profile, image_id: str | None, sha256: str | None) -> ProfileProvenance:
    return ProfileProvenance(
        recorded_at=START, resolved=profile.model_dump(mode="json", by_alias=True),
        compose_env=render_env(profile, now=START), image=profile.image, image_id=image_id,
        image_digests=[], image_note="" if image_id else "not built yet", model_path=str(profile.model_path),
        model_bytes=138_126_368 if sha256 else None, model_sha256=sha256,
        model_sha256_source="SmolLM2-135M-Instruct-Q8_0.gguf.sha256 file" if sha256 else "",
        model_note="" if sha256 else f"model file not found: {profile.model_path}")


def _steps(spans: dict[str, tuple[float, float, StepStatus]], profile_id: str) -> list[StepRecord]:
    steps = []
    for name in STEP_NAMES:
        if name not in spans:
            steps.append(StepRecord(name=name, status=StepStatus.skipped, detail="skipped: server did not start"))
            continue
        begin, seconds, status = spans[name]
        steps.append(StepRecord(name=name, status=status, background=name == "evaluate",
                                started_at=START + timedelta(seconds=begin),
                                ended_at=START + timedelta(seconds=begin + seconds), seconds=seconds,
                                exit_code=0 if status == StepStatus.done else 2, log=f"{profile_id}/{name}.log"))
    return steps


def verify_result() -> VerifyResult:
    checks = [
        Check.make("/health answers 200", "server", True, 'HTTP 200 {"status":"ok"}'),
        Check.make("/v1/models lists a model", "server", True, "SmolLM2-135M-Instruct-Q8_0.gguf"),
        Check.make("context size applied", "server", True, "n_ctx 2048, CTX_SIZE 4096"),
        Check.make("server slots applied", "server", True, "2 slots, PARALLEL 2"),
        Check.make("factual answer contains 'Paris'", "server", True, "answer: 'Paris'"),
        Check.make("streaming yields chunks", "server", True, "7 content chunks, [DONE] seen: '1, 2, 3, 4, 5'"),
        Check.make("model calls a tool (tool_calls)", "capability", False,
                   "no tool_calls: it answered in text instead of calling the tool; answer: 'The weather'"),
    ]
    return VerifyResult(target=f"[{PROFILE}] at http://127.0.0.1:18080", checks=checks)


def _stream(salt: str, ttft_s: float, wall_s: float, tokens: int) -> StreamRun:
    decode = (tokens - 1) / (wall_s - ttft_s)
    return StreamRun(salt=salt, ttft_s=ttft_s, wall_s=wall_s, prompt_tokens=38, completion_tokens=tokens,
                     token_count_source="usage", finish_reason="length", stopped_early=False,
                     decode_tps=round(decode, 2), decode_na_reason=None, wall_tps=round(tokens / wall_s, 2))


def throughput_result() -> ThroughputResult:
    runs = [_stream("a1b2c3d4e5f6", 0.041, 1.262, 128), _stream("0f1e2d3c4b5a", 0.043, 1.248, 128),
            _stream("9a8b7c6d5e4f", 0.039, 1.281, 128)]
    prompt = PromptRun(salt="77aa88bb99cc", prompt_tokens=262, ttft_s=0.118, client_pp_tps=2220.3,
                       server_pp_tps=2391.6, server_prompt_n=262)
    pair = [_stream("c0ffee000001", 0.052, 1.904, 128), _stream("c0ffee000002", 0.055, 1.911, 128)]
    return ThroughputResult(
        created_at=START.isoformat(), endpoint="http://127.0.0.1:18080", model="SmolLM2-135M-Instruct-Q8_0.gguf",
        profile=PROFILE, server_kind="llama.cpp", settings=BenchSettings(runs=3, prompt_runs=1,
                                                                         concurrency_levels=[1, 2]),
        ignore_eos_sent=True, slots=2, slots_source="/props total_slots", n_ctx_per_slot=2048, runs=runs,
        ttft_s=Spread.of([r.ttft_s for r in runs]), decode_tps=Spread.of([r.decode_tps for r in runs]),
        wall_tps=Spread.of([r.wall_tps for r in runs]), stopped_early_runs=0, decode_na_runs=0,
        prompt_processing=[PromptLength(target_tokens=256, runs=[prompt], pp_tps=Spread.of([prompt.server_pp_tps]),
                                        pp_source="server timings")],
        concurrency=[ConcurrencyLevel(streams=1, wall_s=1.262, completion_tokens=128, aggregate_tps=101.43,
                                      runs=runs[:1]),
                     ConcurrencyLevel(streams=2, wall_s=1.911, completion_tokens=256, aggregate_tps=133.96,
                                      runs=pair)],
        vram_peak_mib=None, vram_note="no GPU (CPU profile)", load_time_s=None, load_time_note=None)


def _scenario(pack_id: str, scenario_id: str, score: float, mode: str, latency_ms: float) -> ScenarioResult:
    scenario = Scenario(id=scenario_id, category="fixture", messages=[{"role": "user", "content": f"{scenario_id}?"}],
                        verifier=VerifierSpec(type="exact"))
    status = "pass" if score >= 85 else "partial" if score >= 60 else "fail"
    return ScenarioResult(pack_id=pack_id, scenario_id=scenario_id, category="fixture", score=score, status=status,
                          failure_mode=mode, detail="" if mode == "passed" else mode.replace("_", " "),
                          reply=Reply(content="answer", raw_content="answer", content_source="content",
                                      finish_reason="stop"),
                          prompt_tokens=41, completion_tokens=17, latency_ms=latency_ms, budget_s=60,
                          scenario=scenario)


def packs_result() -> RunResult:
    tool = [_scenario("toolcall-15", "select-weather", 100, "passed", 812.0),
            _scenario("toolcall-15", "two-step-lookup", 40, "wrong_answer", 1430.5),
            _scenario("toolcall-15", "no-tool-needed", 100, "passed", 505.2)]
    follow = [_scenario("instructfollow-15", "words-exact-12", 70, "verifier_fail", 990.1),
              _scenario("instructfollow-15", "bullet-list-3", 100, "passed", 640.7)]
    return RunResult(
        run_id="packs-fixture", started_at=START.isoformat(), finished_at=(START + timedelta(seconds=47)).isoformat(),
        harness_version="0.1.0", endpoint="http://127.0.0.1:18080", model="SmolLM2-135M-Instruct-Q8_0.gguf",
        profile=PROFILE, mode="scenario", server_slots=2, concurrency=1,
        sampling=SamplingProvenance(canonical=True, source="canonical", params=Sampling(temperature=0)),
        thinking=ThinkingState(requested=None, control="none"), timeouts=TimeoutPolicy(measured_tps=101.4),
        complete=True,
        packs=[aggregate("toolcall-15", "1.0.0", "packs/toolcall-15", "benchwright", tool),
               aggregate("instructfollow-15", "1.1.0", "packs/instructfollow-15", "benchwright", follow)])


def _verdict(task_id: str, base: bool, plus: bool) -> TaskVerdict:
    def tests(ok: bool, total: int) -> TestSetVerdict:
        return TestSetVerdict(status="pass" if ok else "fail", passed_tests=total if ok else total - 3,
                              total_tests=total)
    return TaskVerdict(task_id=task_id, base=tests(base, 9), plus=tests(plus, 120), seconds=0.4)


def humaneval_result():
    outcomes = [("HumanEval/0", True, True), ("HumanEval/1", True, False), ("HumanEval/2", False, False),
                ("HumanEval/3", True, True)]
    samples = [{"task_id": t, "solution": "def f():\n    return 1\n" if i != 2 else "",
                "provenance": SampleProvenance(finish_reason="stop", completion_tokens=60, latency_s=1.2,
                                               status="ok").model_dump()}
               for i, (t, _, _) in enumerate(outcomes)]
    verdicts = [_verdict(*o) for o in outcomes]
    return build_result(dataset="humaneval", dataset_path=Path("data/HumanEvalPlus-v0.1.10.jsonl.gz"),
                        dataset_md5="3f5c6c8c4d2b4f3a9e1d7c0b5a6e8f21",
                        samples_path=Path(f"results/{RUN_ID}/{PROFILE}/evalplus/humaneval/humaneval.jsonl"),
                        samples=samples, verdicts=verdicts, evalplus_version="0.3.1",
                        sandbox_image="benchwright/evalplus-sandbox:0.3.1", min_time_limit_s=4.0,
                        gt_time_limit_factor=4.0).model_copy(update={"evaluated_at": START.isoformat()})


def manifest() -> Manifest:
    good = _profile(PROFILE, "SmolLM2-135M Instruct Q8_0", "SmolLM2-135M-Instruct-Q8_0.gguf", 4096, 18080)
    broken = _profile(BROKEN, "corrupt model", "broken.gguf", 2048, 18081)
    options = BenchOptions(packs="toolcall-15,instructfollow-15", evalplus_limit=4, throughput_runs=3)
    done = StepStatus.done
    good_steps = _steps({"env": (0, 0.4, done), "up": (0.5, 3.2, done), "verify": (3.8, 1.1, done),
                         "throughput": (5.0, 9.6, done), "packs": (14.7, 47.0, done), "codegen": (61.8, 22.3, done),
                         "down": (84.2, 0.9, done), "evaluate": (85.2, 31.5, done)}, PROFILE)
    broken_steps = _steps({"env": (85.3, 0.4, done), "up": (85.8, 2.1, StepStatus.failed),
                           "down": (88.0, 0.8, done)}, BROKEN)
    up = next(s for s in broken_steps if s.name == "up")
    up.detail = ("exit 2: server container exited with code 1 (exited) while loading; last 30 log lines "
                 "(+30 lines in the log)")
    for step in broken_steps:
        if step.status == StepStatus.skipped:
            step.detail = "skipped: server did not start: " + up.detail
    return Manifest(
        run_id=RUN_ID, config="/srv/bench/models.conf", options=options.as_dict(), created_at=START,
        updated_at=START + timedelta(seconds=117), finished_at=START + timedelta(seconds=117), wall_seconds=116.7,
        overlap_seconds=2.8,
        provenance=RunProvenance(recorded_at=START, harness_version="0.1.0",
                                 git_commit="16fc9f5e0c3b7a9d2e4f6a8b0c1d3e5f7a9b1c2d", git_dirty=True,
                                 python_version="3.11.9", hostname="bench-host-01"),
        profiles=[
            ProfileRecord(profile=PROFILE, status="completed", steps=good_steps,
                          provenance=_provenance(
                              good, IMAGE_ID, "6ec1a5d1a7a4b0c8d83d3b5d2e6f0f4c1c8a9b2d7e5f3a1c0b9d8e7f6a5b4c3d")),
            ProfileRecord(profile=BROKEN, status="failed", steps=broken_steps,
                          reason="server did not start: " + up.detail
                                 + "; server said: llama_model_load: error loading model: invalid magic number",
                          provenance=_provenance(broken, IMAGE_ID, None)),
        ])


def main() -> None:
    out = HERE / PROFILE
    write_text_atomic(HERE / "manifest.json", manifest().model_dump_json(indent=1) + "\n")
    write_text_atomic(out / "verify.json", verify_result().model_dump_json(indent=1) + "\n")
    write_text_atomic(out / "throughput.json", throughput_result().model_dump_json(indent=1) + "\n")
    write_text_atomic(out / "packs.json", packs_result().model_dump_json(indent=1) + "\n")
    write_text_atomic(out / "evalplus" / "humaneval" / "humaneval.result.json",
                      humaneval_result().model_dump_json(indent=1) + "\n")


if __name__ == "__main__":
    main()
