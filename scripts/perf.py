"""`make perf`: the performance goals of the EvalPlus path, measured and printed as ratios.

1. codegen concurrency: the same tasks with 1 request in flight and with N, against a
   scripted server with a fixed per-request latency (target >= 0.8 x N) and against the
   real embedded llama-server with PARALLEL=2 (started for the measurement if not running).
2. sanitizer bound: our bounded extraction vs evalplus's own sanitizer on a long reply.
3. evaluation: all 164 canonical HumanEval+ solutions checked by our sandbox (container start
   included) vs EvalPlus's own `evaluate()` run directly on the host (target <= 1.2x). Only
   the dataset's canonical solutions run on the host here, never model-written code.
4. agent sandbox overhead: for every scenario of the sandboxed packs, a fresh container is
   started, seeded (fixture + setup + snapshot) and checked (snapshot + hidden files + check
   commands) with an empty episode; the time on the scenario's path (target <= 1 s).

Nothing here asserts; the numbers are for people (and notes) to read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from harness.evalplus import sandbox  # noqa: E402
from harness.evalplus.codegen import CodegenConfig, run_codegen  # noqa: E402
from harness.evalplus.datasets import load_dataset  # noqa: E402
from harness.evalplus.sanitize import _evalplus_sanitize, sanitize_code  # noqa: E402
from harness.paths import CACHE_DIR, COMPOSE_DIR, default_data_dir  # noqa: E402
from harness.serving import compose as serving  # noqa: E402
from harness.serving.profiles import get_profile  # noqa: E402
from tests.doubles.scripted_chat import ScriptedServer, chat_reply  # noqa: E402

HUMANEVAL = default_data_dir() / "humanevalplus" / "HumanEvalPlus-v0.1.10.jsonl"


def _timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def _codegen_walls(tasks, base_url: str, slots: int, max_tokens: int) -> dict[int, float]:
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for parallel in (1, slots):
            config = CodegenConfig(base_url=base_url, model="m", parallel=parallel, max_tokens=max_tokens)
            walls[parallel] = _timed(partial(run_codegen, tasks, config, Path(tmp) / f"p{parallel}.jsonl",
                                             emit=lambda line: None))
    return walls


def codegen_scripted(tasks, latency_s: float = 0.5, slots: int = 4) -> None:
    def answer(body):
        return 200, chat_reply("```python\ndef f(x):\n    return x\n```", tokens=8)

    server = ScriptedServer(answer, latency_s=latency_s).start()
    try:
        walls = _codegen_walls(tasks, server.base_url, slots, 256)
    finally:
        server.stop()
    speedup = walls[1] / walls[slots]
    print(f"codegen, scripted server, {len(tasks)} tasks at {latency_s}s/request: 1 in flight {walls[1]:.1f}s, "
          f"{slots} in flight {walls[slots]:.1f}s -> {speedup:.2f}x = {speedup / slots:.2f} x N "
          f"(target >= 0.8 x N; max in flight seen {server.max_in_flight})")


def codegen_real(tasks, profile_id: str = "bench-smollm2", max_tokens: int = 128) -> None:
    profile = get_profile(REPO_ROOT / "models.conf", profile_id)
    deployment = serving.deployment_for(profile, COMPOSE_DIR)
    was_running = serving.server_container(deployment) is not None
    serving.up(deployment)
    try:
        walls = _codegen_walls(tasks, deployment.base_url, profile.parallel, max_tokens)
    finally:
        if not was_running:
            serving.down(deployment)
    n = profile.parallel
    print(f"codegen, real llama-server [{profile_id}] (PARALLEL={n}, CPU), {len(tasks)} tasks, max_tokens "
          f"{max_tokens}: 1 in flight {walls[1]:.1f}s, {n} in flight {walls[n]:.1f}s -> {walls[1] / walls[n]:.2f}x")


def sanitizer_bound(entry_point: str = "long_function", lines: int = 400) -> None:
    body = "\n".join(f"    value_{i} = {i} * 2  # step {i}" for i in range(lines))
    reply = f"Here is the code:\n\ndef {entry_point}(x):\n{body}\n    return x\n\nThat is all."
    ours = _timed(lambda: sanitize_code(reply, entry_point))
    theirs = _timed(lambda: _evalplus_sanitize().sanitize(reply, entry_point))
    print(f"sanitizer, unfenced {lines}-line reply: ours {ours:.3f}s, evalplus.sanitize {theirs:.2f}s "
          f"-> {theirs / max(ours, 1e-6):.0f}x faster")


_HOST_EVALPLUS = """
import sys, time
from harness.evalplus.sanitize import _evalplus_sanitize
_evalplus_sanitize()  # installs the `datasets` placeholder evalplus.data imports (EvalPerf only)
from evalplus.evaluate import evaluate
started = time.monotonic()
evaluate("humaneval", samples=sys.argv[1], parallel=2, min_time_limit=4.0, gt_time_limit_factor=4.0)
print("SECONDS", time.monotonic() - started, flush=True)
import os; os._exit(0)  # its watchdog thread would keep the process alive for up to 20 s more
"""


def evaluation_sandbox_vs_host(dataset, raw) -> None:
    groundtruth = sandbox.ensure_groundtruth(dataset, CACHE_DIR)
    samples = [{"task_id": t.task_id, "solution": raw[t.task_id]["prompt"] + raw[t.task_id]["canonical_solution"]}
               for t in dataset.tasks]
    verdicts = []
    ours = _timed(lambda: verdicts.extend(sandbox.evaluate_samples(
        dataset, samples, groundtruth, options=sandbox.CheckOptions(parallel=2), limits=sandbox.SandboxLimits())))
    with tempfile.TemporaryDirectory() as tmp:
        samples_path = Path(tmp) / "canonical.jsonl"
        samples_path.write_text("".join(json.dumps(s) + "\n" for s in samples))
        env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(dataset.path), "XDG_CACHE_HOME": str(CACHE_DIR)}
        done = subprocess.run([sys.executable, "-c", _HOST_EVALPLUS, str(samples_path)], env=env,
                              capture_output=True, text=True, cwd=tmp)
        seconds = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("SECONDS ")]
        if not seconds:
            print(f"evaluation: evalplus on the host failed: {done.stderr.strip().splitlines()[-1:]}")
            return
        theirs = float(seconds[0])
        results = json.loads((Path(tmp) / "canonical_eval_results.json").read_text())["eval"]
    their_pass = sum(r[0]["base_status"] == "pass" and r[0]["plus_status"] == "pass" for r in results.values())
    print(f"evaluation, {len(samples)} canonical HumanEval+ samples, 2 workers: our sandbox {ours:.1f}s "
          f"(container start included; {sum(v.plus_pass for v in verdicts)}/{len(samples)} pass), evalplus.evaluate "
          f"on the host {theirs:.1f}s ({their_pass}/{len(samples)} pass) -> ratio {ours / theirs:.2f}x "
          "(target <= 1.2x)")


def agent_sandbox_overhead() -> None:
    from harness.packs.loader import discover_packs
    from harness.packs.sandbox import AgentSandbox, build_agent_image
    from harness.paths import PACKS_DIR
    build_agent_image(REPO_ROOT, CACHE_DIR, None)
    costs = []
    for pack in discover_packs(PACKS_DIR).values():
        for scenario in pack.scenarios if pack.meta.sandbox else []:
            with AgentSandbox(pack, scenario) as box:
                evidence = box.finish([dict(a) for a in scenario.verifier.asserts], status=None, answer="")
            costs.append(sum(evidence.timings_ms.values()) / 1000)
    costs.sort()
    mean = sum(costs) / len(costs)
    print(f"agent sandbox overhead per scenario (start + seed + checks; removal runs in the background), "
          f"{len(costs)} scenarios: mean {mean:.2f}s, p95 {costs[int(0.95 * (len(costs) - 1))]:.2f}s, "
          f"max {costs[-1]:.2f}s -> ratio {mean / 1.0:.2f}x of the 1 s target")


def main() -> int:
    if not HUMANEVAL.is_file():
        print(f"perf: dataset not found: {HUMANEVAL} (run `make data`)", file=sys.stderr)
        return 2
    dataset = load_dataset("humaneval", HUMANEVAL)
    raw = {t["task_id"]: t for t in map(json.loads, HUMANEVAL.read_text().splitlines())}
    codegen_scripted(dataset.tasks[:24])
    codegen_real(dataset.tasks[:12])
    sanitizer_bound()
    if not sandbox.images.image_exists(sandbox.SANDBOX_IMAGE):
        sandbox.build_sandbox_image(REPO_ROOT, CACHE_DIR, None)
    evaluation_sandbox_vs_host(dataset, raw)
    agent_sandbox_overhead()
    return 0


if __name__ == "__main__":
    sys.exit(main())
