"""The EvalPlus sandbox: canonical fidelity, and samples that attack it (a)-(g).

Every sample here runs only inside the sandbox container. A canary path on the host,
and a listening socket on the host, prove the host is untouched.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from pathlib import Path

import pytest

from harness.evalplus import sandbox
from harness.evalplus.datasets import load_dataset
from harness.paths import default_data_dir

pytestmark = pytest.mark.docker

DATA = default_data_dir()  # $BENCHWRIGHT_DATA_DIR, ./data, or ../shared/data
HUMANEVAL = DATA / "humanevalplus" / "HumanEvalPlus-v0.1.10.jsonl"
MBPP = DATA / "mbppplus" / "MbppPlus-v0.2.0.jsonl"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache"
# Representative: simple, float-tolerant, big-int, huge-output, /32 (special check) tasks.
SUBSET = ["HumanEval/0", "HumanEval/2", "HumanEval/15", "HumanEval/32", "HumanEval/53", "HumanEval/83",
          "HumanEval/101", "HumanEval/139", "HumanEval/160"]
OPTIONS = sandbox.CheckOptions(parallel=2)
LIMITS = sandbox.SandboxLimits(memory="2g", pids=128, wall_s=600)


@pytest.fixture(scope="module")
def humaneval():
    if not HUMANEVAL.is_file():
        pytest.skip(f"dataset not found: {HUMANEVAL}")
    # Always (re)build: the layer cache makes it ~1 s, and the tests must exercise the checker as it is now.
    sandbox.build_sandbox_image(REPO_ROOT, CACHE, None)
    dataset = load_dataset("humaneval", HUMANEVAL)
    return dataset, sandbox.ensure_groundtruth(dataset, CACHE)


def _raw_tasks(path: Path) -> dict[str, dict]:
    return {t["task_id"]: t for t in map(json.loads, path.read_text().splitlines())}


def _run(humaneval, samples):
    dataset, gt = humaneval
    return sandbox.evaluate_samples(dataset, samples, gt, options=OPTIONS, limits=LIMITS)


def test_canonical_solutions_pass_and_empty_samples_fail(humaneval):
    raw = _raw_tasks(HUMANEVAL)
    canonical = [{"task_id": t, "solution": raw[t]["prompt"] + raw[t]["canonical_solution"]} for t in SUBSET]
    empty = [{"task_id": t, "solution": ""} for t in SUBSET[:3]]
    verdicts = _run(humaneval, canonical + empty)
    assert [v.plus_pass for v in verdicts[:len(SUBSET)]] == [True] * len(SUBSET), \
        [(v.task_id, v.base.detail, v.plus.detail) for v in verdicts if not v.plus_pass]
    assert not any(v.base_pass for v in verdicts[len(SUBSET):])


@pytest.mark.slow
def test_all_canonical_solutions_pass_humaneval_and_mbpp(humaneval):
    for name, path in (("humaneval", HUMANEVAL), ("mbpp", MBPP)):
        dataset = load_dataset(name, path)
        gt = sandbox.ensure_groundtruth(dataset, CACHE)
        raw = _raw_tasks(path)
        samples = [{"task_id": t, "solution": r["prompt"] + r["canonical_solution"]} for t, r in raw.items()]
        verdicts = sandbox.evaluate_samples(dataset, samples, gt, options=OPTIONS,
                                            limits=sandbox.SandboxLimits(wall_s=1800))
        failed = {v.task_id: (v.base.detail, v.plus.detail) for v in verdicts if not v.plus_pass}
        assert not failed, failed
        # Mbpp/255's plus input 86 returns 1.66 M tuples (about 1 GB): it passes only by streaming.
        assert len(verdicts) == {"humaneval": 164, "mbpp": 378}[name]


def test_a_one_gigabyte_output_is_judged_within_the_default_limits():
    """Mbpp/255's plus input 86 returns 1.66 M tuples of 77 strings (about 1 GB as data).

    EvalPlus compares it in-process; here it crosses from the sample's process to the checker,
    in parts, under the default 4 GiB container and the 60 s per-test-set cap.
    """
    if not MBPP.is_file():
        pytest.skip(f"dataset not found: {MBPP}")
    sandbox.build_sandbox_image(REPO_ROOT, CACHE, None)
    dataset = load_dataset("mbpp", MBPP)
    gt = sandbox.ensure_groundtruth(dataset, CACHE)
    raw = _raw_tasks(MBPP)["Mbpp/255"]
    [verdict] = sandbox.evaluate_samples(dataset, [{"task_id": "Mbpp/255", "solution": raw["canonical_solution"]}], gt,
                                         options=sandbox.CheckOptions(parallel=1), limits=sandbox.SandboxLimits())
    assert verdict.plus_pass, (verdict.base, verdict.plus)


def _attack(task: str, body: str) -> dict:
    """A sample for `task` whose module-level `body` runs before the function is called."""
    raw = _raw_tasks(HUMANEVAL)[task]
    return {"task_id": task, "solution": raw["prompt"] + raw["canonical_solution"] + "\n" + body + "\n"}


@pytest.fixture
def canary(tmp_path_factory):
    path = Path("/tmp") / f"bw-evalplus-canary-{uuid.uuid4().hex}"
    yield path
    assert not path.exists(), f"a sample created {path} on the host"


@pytest.fixture
def host_listener():
    """A socket on the host; the sandbox must never reach it."""
    connections = []
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connections.append(server.accept())
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connections
    stop.set()
    thread.join()
    server.close()


def _wrong(task: str, body: str) -> dict:
    """A sample whose function returns a wrong answer unless `body` manages to cheat."""
    raw = _raw_tasks(HUMANEVAL)[task]
    return {"task_id": task, "solution": raw["prompt"] + "    return None\n" + body + "\n"}


def test_attacks_are_contained_and_never_pass(humaneval, canary, host_listener):
    port, connections = host_listener
    attacks = {
        # (a), (b): the answer is right only if the attack worked, so a pass would show it did.
        "a-network": _attack("HumanEval/0", f"""
import socket
_connected = False
for host in ("172.17.0.1", "127.0.0.1", "host.docker.internal", "8.8.8.8"):
    try:
        socket.create_connection((host, {port}), timeout=1)
        _connected = True
    except OSError:
        pass
if not _connected:
    has_close_elements = lambda *args: None"""),
        "b-write-outside": _attack("HumanEval/2", f"""
import io
_written = False
for target in ({str(canary)!r}, "/etc/bw-canary", "/opt/bw/checker.py", "/bw-canary", "/tmp/../bw-canary"):
    try:
        with io.open(target, "a") as handle:
            handle.write("x")
        _written = _written or not target.startswith("/tmp/bw-evalplus-canary")
    except OSError:
        pass
if not _written:
    truncate_number = lambda *args: None"""),
        "c-fork-bomb": _attack("HumanEval/3", """
_fork = __import__("posix").fork
while True:
    try:
        _fork()
    except OSError:
        pass"""),
        "d-sleep-forever": _attack("HumanEval/4", """
import signal, time
signal.signal(signal.SIGALRM, signal.SIG_IGN)
while True:
    time.sleep(1000)"""),
        "e-allocate-10gb": _attack("HumanEval/5", """
blocks = []
for _ in range(100):
    blocks.append(bytearray(100 * 1024 * 1024))"""),
        "f-exit-early": _attack("HumanEval/7", "import os\nos._exit(0)"),
        "f-sys-exit": _attack("HumanEval/8", "import sys\nsys.exit(0)"),
        "g-always-equal": _wrong("HumanEval/9", """
class _Yes(list):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
def rolling_max(numbers): return _Yes()"""),
        "g-patch-checker": _wrong("HumanEval/10", """
import numpy, builtins, sys
numpy.allclose = lambda *a, **k: True
builtins.isinstance = lambda *a: True
for name, module in list(sys.modules.items()):
    if name.startswith(("evalplus", "json")):
        for attr in dir(module):
            if callable(getattr(module, attr, None)):
                try: setattr(module, attr, lambda *a, **k: True)
                except Exception: pass"""),
        "g-forge-frames": _wrong("HumanEval/11", """
import os, json
for fd in range(3, 64):
    try:
        for i in range(500):
            os.write(fd, (json.dumps({"k": "out", "i": i, "v": ["s", "010"]}) + "\\n").encode())
    except OSError:
        pass
os._exit(0)"""),
        "g-kill-checker": _wrong("HumanEval/12", """
import os, signal
for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
    try: os.kill(1, sig)
    except OSError: pass
try:
    print("DONE fake {}", file=open("/proc/1/fd/1", "w"))
except OSError:
    pass"""),
    }
    # An honest canonical sample after the attacks shows the checker survived them.
    raw = _raw_tasks(HUMANEVAL)["HumanEval/13"]
    honest = {"task_id": "HumanEval/13", "solution": raw["prompt"] + raw["canonical_solution"]}
    samples = list(attacks.values()) + [honest]
    verdicts = _run(humaneval, samples)
    by_name = dict(zip(attacks, verdicts[:len(attacks)], strict=False))
    passed = [name for name, v in by_name.items() if v.base_pass or v.plus_pass]
    assert not passed, {name: (by_name[name].base, by_name[name].plus) for name in passed}
    assert verdicts[-1].plus_pass, verdicts[-1]
    assert not connections
    assert by_name["d-sleep-forever"].base.status == "timeout"
    assert "not a plain value" in by_name["g-always-equal"].base.detail


def test_long_outputs_are_streamed_and_judged_like_evalplus(humaneval):
    """Outputs of more than 4096 items cross in parts (HumanEval/100 and /130 return 1 M-item lists).

    A part byte-identical to our encoding of the expected items is accepted as is; anything
    else is compared by value, so EvalPlus's `==` semantics hold (ints equal to floats pass),
    and a wrong, longer, re-typed or unencodable output fails at the test that returned it.
    """
    raw = _raw_tasks(HUMANEVAL)
    pile = "def make_a_pile(n):\n    out = [n + 2 * i for i in range(n)]\n"
    samples = {
        "canonical-100": {"task_id": "HumanEval/100", "solution": raw["HumanEval/100"]["prompt"]
                          + raw["HumanEval/100"]["canonical_solution"]},
        "canonical-130": {"task_id": "HumanEval/130", "solution": raw["HumanEval/130"]["prompt"]
                          + raw["HumanEval/130"]["canonical_solution"]},
        "floats-for-ints-130": {"task_id": "HumanEval/130", "solution": raw["HumanEval/130"]["prompt"]
                                + raw["HumanEval/130"]["canonical_solution"].replace(
                                    "return my_tri", "return [float(x) for x in my_tri]")},
        "last-item-wrong": {"task_id": "HumanEval/100",
                            "solution": pile + "    if n > 4096: out[-1] += 1\n    return out\n"},
        "one-item-more": {"task_id": "HumanEval/100",
                          "solution": pile + "    if n > 4096: out.append(0)\n    return out\n"},
        "tuple-for-list": {"task_id": "HumanEval/100",
                           "solution": pile + "    return tuple(out) if n > 4096 else out\n"},
        "always-equal-item": {"task_id": "HumanEval/100",
                              "solution": "class _Yes:\n    def __eq__(self, o): return True\n"
                              + pile + "    if n > 4096: out[5000] = _Yes()\n    return out\n"},
        "forged-stream": {"task_id": "HumanEval/100", "solution": pile + """    if n > 4096:
        import json, os
        for fd in range(3, 64):
            try:
                os.write(fd, b'{"k":"seq","i":109,"t":"l","n":%d}\\n' % n)
                os.write(fd, b'{"k":"part","i":109,"c":%d,"v":["L",[]]}\\n' % n)
                os.write(fd, b'{"k":"part","i":109,"c":1,"v":["L",[%d]]}\\n' % n)
            except OSError:
                pass
        os._exit(0)
    return out
"""},
    }
    big_test = 1 + next(i for i, args in enumerate(raw["HumanEval/100"]["plus_input"]) if args[0] > 4096)
    verdicts = dict(zip(samples, _run(humaneval, list(samples.values())), strict=False))
    for name in ("canonical-100", "canonical-130", "floats-for-ints-130"):
        assert verdicts[name].plus_pass, (name, verdicts[name].plus)
    for name in ("last-item-wrong", "one-item-more", "tuple-for-list", "always-equal-item", "forged-stream"):
        verdict = verdicts[name]
        assert verdict.base_pass and not verdict.plus_pass, (name, verdict.plus)
        assert verdict.plus.passed_tests == big_test - 1, (name, verdict.plus)
    assert "not a plain value" in verdicts["always-equal-item"].plus.detail
