"""`make perf`: the performance goals of the EvalPlus path, measured and printed as ratios.

1. codegen concurrency: the same tasks against a scripted server with a fixed per-request
   latency, with 1 request in flight and with N (as a server with N slots would get).
2. sanitizer bound: our bounded extraction vs evalplus's own sanitizer on a long reply.
3. sandbox evaluation: our trusted checker vs EvalPlus's own `evaluate()` on the same
   samples, both inside the sandbox image (model code never runs on the host).

Nothing here asserts; the numbers are for people (and notes) to read.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from harness import sandbox  # noqa: E402
from harness.codegen import CodegenConfig, run_codegen  # noqa: E402
from harness.datasets import load_dataset  # noqa: E402
from harness.paths import CACHE_DIR, default_data_dir  # noqa: E402
from harness.sanitize import _evalplus_sanitize, sanitize_code  # noqa: E402
from tests.scripted_chat import ScriptedServer, chat_reply  # noqa: E402

HUMANEVAL = default_data_dir() / "humanevalplus" / "HumanEvalPlus-v0.1.10.jsonl"


def _timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def codegen_concurrency(tasks, latency_s: float = 0.5, slots: int = 4) -> None:
    def answer(body):
        return 200, chat_reply("```python\ndef f(x):\n    return x\n```", tokens=8)

    server = ScriptedServer(answer, latency_s=latency_s).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            walls = {}
            for parallel in (1, slots):
                config = CodegenConfig(base_url=server.base_url, model="m", parallel=parallel)
                walls[parallel] = _timed(lambda: run_codegen(tasks, config, Path(tmp) / f"p{parallel}.jsonl",
                                                             emit=lambda line: None))
    finally:
        server.stop()
    print(f"codegen, {len(tasks)} tasks at {latency_s}s/request: 1 in flight {walls[1]:.1f}s, {slots} in flight "
          f"{walls[slots]:.1f}s -> speed-up {walls[1] / walls[slots]:.2f}x (ideal {slots}x; "
          f"max in flight seen {server.max_in_flight})")


def sanitizer_bound(entry_point: str = "long_function", lines: int = 400) -> None:
    body = "\n".join(f"    value_{i} = {i} * 2  # step {i}" for i in range(lines))
    reply = f"Here is the code:\n\ndef {entry_point}(x):\n{body}\n    return x\n\nThat is all."
    ours = _timed(lambda: sanitize_code(reply, entry_point))
    theirs = _timed(lambda: _evalplus_sanitize().sanitize(reply, entry_point))
    print(f"sanitizer, unfenced {lines}-line reply: ours {ours:.3f}s, evalplus.sanitize {theirs:.2f}s "
          f"-> {theirs / max(ours, 1e-6):.0f}x faster")


def sandbox_evaluation(dataset, raw, count: int = 40) -> None:
    groundtruth = sandbox.ensure_groundtruth(dataset, CACHE_DIR)
    task_ids = [t.task_id for t in dataset.tasks[:count]]
    samples = [{"task_id": t, "solution": raw[t]["prompt"] + raw[t]["canonical_solution"]} for t in task_ids]
    options = sandbox.CheckOptions(parallel=2)
    ours = _timed(lambda: sandbox.evaluate_samples(dataset, samples, groundtruth, options=options,
                                                   limits=sandbox.SandboxLimits(memory="6g")))
    theirs = _timed(lambda: sandbox.reference_evaluate(dataset, samples, groundtruth, options=options,
                                                       limits=sandbox.SandboxLimits(memory="6g", wall_s=900)))
    print(f"sandbox evaluation, {count} canonical HumanEval+ samples (2 workers, container start included): "
          f"ours {ours:.1f}s, EvalPlus evaluate() {theirs:.1f}s -> ratio {theirs / ours:.2f}x")


def main() -> int:
    if not HUMANEVAL.is_file():
        print(f"perf: dataset not found: {HUMANEVAL} (run `make data`)", file=sys.stderr)
        return 2
    dataset = load_dataset("humaneval", HUMANEVAL)
    raw = {t["task_id"]: t for t in map(json.loads, HUMANEVAL.read_text().splitlines())}
    codegen_concurrency(dataset.tasks[:24])
    sanitizer_bound()
    if not sandbox.images.image_exists(sandbox.SANDBOX_IMAGE):
        sandbox.build_sandbox_image(REPO_ROOT, CACHE_DIR, None)
    sandbox_evaluation(dataset, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
