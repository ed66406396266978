"""The trusted side of the EvalPlus sandbox: runs as the container's PID 1.

Modes (argv[1]):
  prepare    compute EvalPlus's ground truth (expected outputs and reference timings) for
             the dataset at $DATASET into $XDG_CACHE_HOME/evalplus/<md5>.pkl. Runs only the
             dataset's canonical solutions.
  evaluate   read a request from stdin (header line, dataset, ground truth, samples), run
             every sample's base and plus tests in worker.py processes, compare outputs
             here, and print one signed JSON line per sample, then a signed DONE line.
  reference  same stdin request, but run EvalPlus's own `evaluate()` on the samples (for
             the fidelity comparison) and print its eval_results as one signed line.

Why it is built this way (see harness/sandbox.py for the docker side):
* the oracle (dataset, expected outputs) arrives on stdin and never touches the disk, so a
  sample cannot read it; the request file written for EvalPlus's loader is deleted at once;
* outputs come back from workers as plain type-tagged values and are compared here, so an
  object that claims equality, or a patched module, only ever exists in the worker; a list or
  tuple of more than 4096 items comes in parts, each accepted when byte-identical to our own
  encoding of the expected items and otherwise decoded and compared by value (_Judge);
* this process is PID 1 (signals from samples with default action are dropped) and not
  dumpable (samples cannot open /proc/1/fd or /proc/1/mem); every output line carries a
  nonce that only the host and this process know;
* after each job, processes outside the live workers' sessions are killed (fork bombs and
  double-forked escapees), and orphans are reaped.
"""

import ctypes
import importlib.util
import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor

PYTHON = sys.executable
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")
WORK_DIR = "/tmp/work"
MAX_FRAME_BYTES = 256 << 20
MAX_DECODE_DEPTH = 70
EVALPLUS_TIMEOUT_PER_TASK_S = 60  # EvalPlus's default cap on one test set's total limit
sys.set_int_max_str_digits(0)


def _install_datasets_placeholder():
    """evalplus.data imports `datasets` for EvalPerf only; we never call it."""
    try:
        import datasets  # noqa: F401
    except ImportError:
        module = types.ModuleType("datasets")

        def load_dataset(*_args, **_kwargs):
            raise RuntimeError("HuggingFace datasets is not installed in the sandbox (EvalPerf is not supported)")

        module.load_dataset = load_dataset
        sys.modules["datasets"] = module


def _harden_self():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)


# ---------------------------------------------------------------- request stream

def _read_request(stream):
    header = json.loads(stream.readline())
    blobs = [stream.read(size) for size in header["lengths"]]
    if any(len(blob) != size for blob, size in zip(blobs, header["lengths"])):
        raise SystemExit("checker: truncated request on stdin")
    return header, blobs


def _load_problems(dataset, dataset_bytes):
    """Load tasks with EvalPlus's own loader, from a file that exists only for this call."""
    fd, path = tempfile.mkstemp(suffix=".jsonl", dir="/tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(dataset_bytes)
    try:
        os.environ["HUMANEVAL_OVERRIDE_PATH" if dataset == "humaneval" else "MBPP_OVERRIDE_PATH"] = path
        _install_datasets_placeholder()
        if dataset == "humaneval":
            from evalplus.data.humaneval import get_human_eval_plus
            return get_human_eval_plus()
        from evalplus.data.mbpp import get_mbpp_plus
        return get_mbpp_plus()
    finally:
        os.unlink(path)


# ---------------------------------------------------------------- decoding worker values

class _Opaque:
    """A non-None object the sample returned where EvalPlus only checks `is not None`."""


_OPAQUE = _Opaque()


def _decode(node, depth=0):
    """Inverse of worker.py's encoder; builds only builtin (and numpy numeric) values."""
    if depth > MAX_DECODE_DEPTH:
        raise ValueError("value nested too deeply")
    if node is None:
        return None
    tag = node[0]
    if tag == "o" and depth == 0:
        return _OPAQUE
    if tag == "b":
        if type(node[1]) is not bool:
            raise ValueError("bad bool")
        return node[1]
    if tag == "s":
        if type(node[1]) is not str:
            raise ValueError("bad str")
        return node[1]
    if tag == "i":
        return int(node[1], 16)
    if tag == "f":
        return float.fromhex(node[1])
    if tag == "c":
        return complex(float.fromhex(node[1]), float.fromhex(node[2]))
    if tag == "y":
        return bytes.fromhex(node[1])
    if tag in ("L", "T"):
        items = node[1]
        if type(items) is not list or not {type(item) for item in items} <= {int, float, str}:
            raise ValueError("bad flat sequence")
        return items if tag == "L" else tuple(items)
    if tag in ("l", "t", "S", "F"):
        items = [_decode(item, depth + 1) for item in node[1]]
        return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
    if tag == "d":
        return {_decode(k, depth + 1): _decode(v, depth + 1) for k, v in node[1]}
    if tag in ("n", "a"):
        import numpy as np

        dtype = np.dtype(node[1])
        if dtype.kind not in "biufc":
            raise ValueError("unsupported numpy dtype")
        value = _decode(node[2], depth + 1)
        return dtype.type(value) if tag == "n" else np.array(value, dtype=dtype)
    raise ValueError("unknown tag %r" % (tag,))


# ---------------------------------------------------------------- EvalPlus's comparison rules

# MBPP+ tasks whose rule _outputs_match writes out by name (EvalPlus's _special_oracle.py
# lists the others); _has_special_rule reads the same names.
_MBPP_OWN_RULES = ("are_equivalent", "sum_div", "surface_Area", "digit_distance_nums")


def _outputs_match(dataset, entry_point, args, out, exp, atol):
    """EvalPlus 0.3.1's per-test decision (special oracles included), on trusted values.

    Returns (passed, atol): EvalPlus raises atol to 1e-6 for the rest of a test set once a
    float expectation is met, so the caller carries it forward. HumanEval/32 uses the
    upstream fix: pass when the polynomial at the returned x is within atol of zero.
    """
    import numpy as np
    from evalplus.eval import is_floats
    from evalplus.eval._special_oracle import (MBPP_OUTPUT_NOT_NONE_TASKS, MBPP_OUTPUT_SET_EQ_TASKS,
                                               _digit_distance_nums, _poly, _surface_Area)

    exact = out == exp
    if dataset == "mbpp":
        if entry_point == "are_equivalent":
            exact = True
        elif entry_point == "sum_div":
            exact = exact or out == 0
        elif entry_point == "surface_Area":
            exact = exact or abs(out - _surface_Area(*args)) <= atol
        elif entry_point == "digit_distance_nums":
            exact = exact or out == _digit_distance_nums(*args)
        elif entry_point in MBPP_OUTPUT_SET_EQ_TASKS:
            exact = set(out) == set(exp)
        elif entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    if dataset == "humaneval" and entry_point == "find_zero":
        return bool(abs(_poly(*args, out)) <= atol), atol
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if not exact and atol != 0:
        if type(out) != type(exp):
            return False, atol
        if isinstance(exp, (list, tuple)) and len(out) != len(exp):
            return False, atol
        return bool(np.allclose(out, exp, rtol=1e-07, atol=atol)), atol
    return bool(exact), atol


def _has_special_rule(dataset, entry_point):
    """True where _outputs_match does more than `out == exp` (then a streamed output is judged whole)."""
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS, MBPP_OUTPUT_SET_EQ_TASKS

    if dataset == "humaneval":
        return entry_point == "find_zero"
    return entry_point in (set(_MBPP_OWN_RULES) | set(MBPP_OUTPUT_SET_EQ_TASKS) | set(MBPP_OUTPUT_NOT_NONE_TASKS))


# ---------------------------------------------------------------- running workers

class _Reaper:
    """Tracks live worker sessions; kills everything else a sample may have left behind."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sessions = set()

    def spawn(self, job_bytes, write_fd, env):
        # PIDs may be exhausted by a fork bomb in a neighbouring job: it is killed when that job's
        # deadline passes, so keep trying for longer than any deadline.
        give_up = time.monotonic() + EVALPLUS_TIMEOUT_PER_TASK_S + 10
        while True:
            with self.lock:
                try:
                    proc = subprocess.Popen([PYTHON, "-I", WORKER, str(write_fd)], stdin=subprocess.PIPE,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_fd,),
                                            start_new_session=True, cwd=WORK_DIR, env=env)
                except OSError:
                    if time.monotonic() > give_up:
                        raise
                    self._sweep()
                else:
                    self.sessions.add(proc.pid)
                    return proc
            time.sleep(0.5)

    def finish(self, proc):
        with self.lock:
            self.sessions.discard(proc.pid)
            for sig_target in (proc.pid,):
                try:
                    os.killpg(sig_target, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()
            self._sweep()

    def _sweep(self):
        # Repeat: a fork bomb may add processes while we kill them.
        for _ in range(50):
            if not self._sweep_once():
                return

    def _sweep_once(self):
        me, killed = os.getpid(), 0
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            pid = int(name)
            try:
                with open("/proc/%d/stat" % pid) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            state, ppid, session = fields[0], int(fields[1]), int(fields[3])
            if session in self.sessions:
                continue
            if state != "Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
            if ppid == me:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        return killed


def _start_thread(target, args):
    """Start a daemon thread, waiting out a neighbouring job's fork bomb: threads count against the
    container's PID cap too, and the bomb is killed when its job's deadline passes."""
    give_up = time.monotonic() + EVALPLUS_TIMEOUT_PER_TASK_S + 10
    while True:
        try:
            threading.Thread(target=target, args=args, daemon=True).start()
            return
        except RuntimeError:  # "can't start new thread"
            if time.monotonic() > give_up:
                raise
            time.sleep(0.5)


def _run_tests(reaper, dataset, problem, solution, inputs, expected, ref_times_s, options):
    """One test set (base or plus) of one sample: (status, passed_count, failed_index, detail)."""
    limits = [max(options["min_time_limit_s"], options["gt_time_limit_factor"] * t) for t in ref_times_s]
    deadline_s = min(EVALPLUS_TIMEOUT_PER_TASK_S, sum(limits)) + 2
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS

    not_none = dataset == "mbpp" and problem["entry_point"] in MBPP_OUTPUT_NOT_NONE_TASKS
    job = pickle.dumps({"code": solution, "entry_point": problem["entry_point"], "inputs": inputs,
                        "output_not_none": not_none,
                        "time_limits_s": limits, "max_memory_bytes": options["max_memory_bytes"]})
    read_fd, write_fd = os.pipe()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORK_DIR, "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    try:
        proc = reaper.spawn(job, write_fd, env)
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        return "fail", 0, 0, "could not start the worker (%s)" % exc
    os.close(write_fd)
    start = time.monotonic()
    try:
        _start_thread(_feed, (proc, job))
        return _collect(read_fd, start + deadline_s, dataset, problem, inputs, expected, deadline_s)
    finally:
        reaper.finish(proc)
        os.close(read_fd)


def _feed(proc, job):
    try:
        proc.stdin.write(job)
        proc.stdin.close()
    except OSError:
        pass


def _collect(read_fd, deadline, dataset, problem, inputs, expected, deadline_s):
    import select

    judge = _Judge(dataset, problem, inputs, expected)
    buffer = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout", judge.received, judge.received, "no verdict after %.1fs (test %d of %d)" % (
                deadline_s, judge.received + 1, len(inputs))
        ready, _, _ = select.select([read_fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            if judge.received == len(inputs) and judge.stream is None:
                return "pass", judge.received, None, ""
            # EvalPlus reports a test process that ends without a verdict as a timeout.
            return "timeout", judge.received, judge.received, "the sample's process ended before test %d of %d" % (
                judge.received + 1, len(inputs))
        start = len(buffer)
        buffer += chunk
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = bytes(buffer[:end])
            del buffer[:end + 1]
            start = 0
            verdict = judge.frame(line)
            if verdict is not None:
                return verdict
        if len(buffer) > MAX_FRAME_BYTES:
            return "fail", judge.received, judge.received, "output of test %d larger than %d MiB" % (
                judge.received + 1, MAX_FRAME_BYTES >> 20)


class _Stream:
    """A long list/tuple output arriving in parts (worker.py sends those of more than 4096 items).

    When the task's rule is plain `out == exp` on a sequence of the same type, parts are compared
    item by item as they come (what list/tuple equality does) and then dropped, so a huge output
    is never held whole here. Under any other rule the parts are joined and judged as one value.
    """

    def __init__(self, kind, total, exp, elementwise):
        self.kind, self.total, self.exp, self.seen = kind, total, exp, 0
        self.elementwise = elementwise
        self.items = None if elementwise else []
        self.equal = elementwise and len(exp) == total


class _Judge:
    """Reads the worker's frames for one test set in order and decides each test."""

    def __init__(self, dataset, problem, inputs, expected):
        self.dataset, self.problem, self.inputs, self.expected = dataset, problem, inputs, expected
        self.received, self.atol, self.stream = 0, problem["atol"], None

    def _fail(self, detail):
        return "fail", self.received, self.received, detail

    def frame(self, line):
        """None while the test set goes on, else a final (status, passed, failed_at, detail)."""
        if self.stream is not None and self.stream.equal and self._part_matches_bytes(line):
            return self._close() if self.stream.seen == self.stream.total else None
        try:
            frame = json.loads(line)
            kind = frame["k"]
        except (ValueError, KeyError, TypeError):
            return self._fail("unreadable output from the sample's process")
        if kind == "exec_error":
            return "fail", 0, 0, "the solution does not load: %s" % frame.get("msg", "")
        if frame.get("i") != self.received or self.received >= len(self.inputs):
            return self._fail("out-of-order output from the sample's process")
        if kind == "err":
            return self._fail("test %d raised %s" % (self.received + 1, frame.get("msg", "")))
        if kind == "out" and self.stream is None:
            try:
                return self._decide(_decode(frame["v"]))
            except Exception as exc:  # noqa: BLE001 - a comparison that cannot be made is a failure
                return self._fail("test %d: %s: %s" % (self.received + 1, type(exc).__name__, str(exc)[:200]))
        if kind == "seq" and self.stream is None:
            return self._open(frame)
        if kind == "part" and self.stream is not None:
            try:
                return self._part(frame)
            except Exception as exc:  # noqa: BLE001
                return self._fail("test %d: %s: %s" % (self.received + 1, type(exc).__name__, str(exc)[:200]))
        return self._fail("out-of-order output from the sample's process")

    def _decide(self, out):
        passed, self.atol = _outputs_match(self.dataset, self.problem["entry_point"], self.inputs[self.received],
                                           out, self.expected[self.received], self.atol)
        if not passed:
            return self._fail("test %d: wrong output" % (self.received + 1))
        self.received += 1
        return None

    def _open(self, frame):
        from evalplus.eval import is_floats

        kind, total = frame.get("t"), frame.get("n")
        if kind not in ("l", "t") or type(total) is not int or total < 0:
            return self._fail("unreadable output from the sample's process")
        exp = self.expected[self.received]
        elementwise = (type(exp) is (list if kind == "l" else tuple) and self.atol == 0 and not is_floats(exp)
                       and not _has_special_rule(self.dataset, self.problem["entry_point"]))
        self.stream = _Stream(kind, total, exp, elementwise)
        return self._close() if total == 0 else None

    def _part_matches_bytes(self, line):
        """Fast path for a streamed part: its bytes equal our own encoding of the expected items.

        Parsing a part costs far more than encoding one (a 1 GB output of short strings takes
        ~40 s to parse), and equal canonical encodings mean equal values, with two exceptions
        kept off this path: NaN (encodes equal, compares unequal) and numpy values. Any part that
        is not byte-identical is parsed and compared by value as usual.
        """
        stream = self.stream
        match = _PART_HEAD.match(line)
        if match is None or int(match.group(1)) != self.received or not line.endswith(b"}"):
            return False
        count = int(match.group(2))
        if not 0 < count <= stream.total - stream.seen:
            return False
        try:
            # allow_nan=False: NaN in a flat list raises too (exact_only catches the tagged ones)
            mine = json.dumps(_trusted_encoder()(list(stream.exp[stream.seen:stream.seen + count]), 1),
                              allow_nan=False).encode()
        except Exception:  # noqa: BLE001 - NaN, numpy, or values the encoder does not cover: go by value
            return False
        if line[match.end():-1] != mine:
            return False
        stream.seen += count
        return True

    def _part(self, frame):
        stream = self.stream
        items = _decode(frame["v"], 1)
        if type(items) is not list or not items or stream.seen + len(items) > stream.total:
            return self._fail("unreadable output from the sample's process")
        if stream.elementwise:
            if stream.equal:
                exp, base = stream.exp, stream.seen
                stream.equal = all(item == exp[base + j] for j, item in enumerate(items))
            if not stream.equal:  # EvalPlus's exact rule fails; no tolerance applies to these tasks
                return self._fail("test %d: wrong output" % (self.received + 1))
        else:
            stream.items.extend(items)
        stream.seen += len(items)
        return self._close() if stream.seen == stream.total else None

    def _close(self):
        stream, self.stream = self.stream, None
        if stream.elementwise:
            if not stream.equal:
                return self._fail("test %d: wrong output" % (self.received + 1))
            self.received += 1  # every item equal, same length and type: `out == exp` holds
            return None
        return self._decide(stream.items if stream.kind == "l" else tuple(stream.items))


_PART_HEAD = re.compile(rb'\{"k":"part","i":(\d{1,9}),"c":(\d{1,9}),"v":')
_ENCODER = []


def _trusted_encoder():
    """worker.py's encoder, loaded here (from our own file) to encode expected values."""
    if not _ENCODER:
        spec = importlib.util.spec_from_file_location("_bw_worker_encoding", WORKER)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _ENCODER.append(module._encoder(False, exact_only=True))
    return _ENCODER[0]


class _LazyOracles:
    """task id -> expected outputs, unpickled on first use (MBPP+'s are ~0.8 GB in all)."""

    def __init__(self, blobs):
        self.blobs, self.lock, self.cache = blobs, threading.Lock(), {}

    def __getitem__(self, task_id):
        with self.lock:
            if task_id not in self.cache:
                self.cache[task_id] = pickle.loads(self.blobs.pop(task_id))
            return self.cache[task_id]

    def release(self, task_id):
        with self.lock:
            self.cache.pop(task_id, None)


def _evaluate(header, blobs, emit):
    dataset = header["dataset"]
    problems = _load_problems(dataset, blobs[0])
    expected = _LazyOracles(pickle.loads(blobs[1]))
    samples = [json.loads(line) for line in blobs[2].splitlines() if line.strip()]
    del blobs[:]
    os.makedirs(WORK_DIR, exist_ok=True)
    reaper = _Reaper()
    options = header["options"]

    def run(index_sample):
        index, sample = index_sample
        task_id = sample["task_id"]
        problem = problems.get(task_id)
        if problem is None:
            return {"index": index, "task_id": task_id, "error": "task not in the dataset"}
        solution = sample["solution"] if "solution" in sample else problem["prompt"] + sample["completion"]
        result = {"index": index, "task_id": task_id}
        started = time.monotonic()
        for kind in ("base", "plus"):
            if kind == "plus" and result["base"]["status"] != "pass" and options.get("skip_plus_after_base_failure"):
                result[kind] = {"status": "fail", "passed_tests": 0, "total_tests": len(problem["plus_input"]),
                                "detail": "not run: the base tests failed", "fail_input": None}
                continue
            status, passed, failed_at, detail = _run_tests(
                reaper, dataset, problem, solution, problem[kind + "_input"], expected[task_id][kind],
                expected[task_id][kind + "_time"], options)
            result[kind] = {"status": status, "passed_tests": passed, "total_tests": len(problem[kind + "_input"]),
                            "detail": detail,
                            "fail_input": _fail_input(dataset, task_id, problem[kind + "_input"], failed_at)}
        result["seconds"] = round(time.monotonic() - started, 3)
        if sum(1 for s in samples if s["task_id"] == task_id) == 1:
            expected.release(task_id)
        return result

    with ThreadPoolExecutor(max_workers=max(1, int(options["parallel"]))) as pool:
        for result in pool.map(run, enumerate(samples)):
            emit("RESULT", result)


def _fail_input(dataset, task_id, inputs, failed_at):
    if failed_at is None or failed_at >= len(inputs):
        return None
    value = [inputs[failed_at]]
    if dataset == "mbpp":
        from evalplus.data.mbpp import mbpp_serialize_inputs
        value = mbpp_serialize_inputs(task_id, value)
    return json.loads(json.dumps(value[0], default=repr))


def _reference(header, blobs, emit):
    """EvalPlus's own evaluate() on the samples (model code runs in its pool, in here)."""
    dataset = header["dataset"]
    cache = tempfile.mkdtemp(dir="/tmp")
    os.environ["XDG_CACHE_HOME"] = cache
    data_path = os.path.join(cache, "dataset.jsonl")
    with open(data_path, "wb") as handle:
        handle.write(blobs[0])
    os.environ["HUMANEVAL_OVERRIDE_PATH" if dataset == "humaneval" else "MBPP_OVERRIDE_PATH"] = data_path
    import hashlib

    os.makedirs(os.path.join(cache, "evalplus"), exist_ok=True)
    with open(os.path.join(cache, "evalplus", hashlib.md5(blobs[0]).hexdigest() + ".pkl"), "wb") as handle:
        handle.write(blobs[1])
    samples_path = os.path.join(cache, "samples.jsonl")
    present = {json.loads(line)["task_id"] for line in blobs[2].splitlines() if line.strip()}
    missing = [json.loads(line)["task_id"] for line in blobs[0].splitlines() if line.strip()]
    with open(samples_path, "wb") as handle:
        handle.write(blobs[2])
        # EvalPlus insists on a sample for every task: pad with empty ones, drop them below.
        for task_id in missing:
            if task_id not in present:
                handle.write((json.dumps({"task_id": task_id, "solution": ""}) + "\n").encode())
    _install_datasets_placeholder()
    from evalplus.evaluate import evaluate

    options = header["options"]
    with _quiet():
        evaluate(dataset, samples=samples_path, parallel=int(options["parallel"]),
                 min_time_limit=options["min_time_limit_s"], gt_time_limit_factor=options["gt_time_limit_factor"])
    with open(samples_path.replace(".jsonl", "_eval_results.json")) as handle:
        results = json.load(handle)
    results["eval"] = {k: v for k, v in results["eval"].items() if k in present}
    emit("REFERENCE", results)


class _quiet:
    def __enter__(self):
        self.saved = sys.stdout
        sys.stdout = io.StringIO()

    def __exit__(self, *exc):
        sys.stdout = self.saved


def _prepare():
    dataset, path = os.environ["DATASET"], os.environ["DATASET_PATH"]
    os.environ["HUMANEVAL_OVERRIDE_PATH" if dataset == "humaneval" else "MBPP_OVERRIDE_PATH"] = path
    _install_datasets_placeholder()
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
    from evalplus.evaluate import get_groundtruth

    if dataset == "humaneval":
        from evalplus.data import get_human_eval_plus, get_human_eval_plus_hash
        problems, digest, not_none = get_human_eval_plus(), get_human_eval_plus_hash(), []
    else:
        from evalplus.data import get_mbpp_plus, get_mbpp_plus_hash
        problems, digest, not_none = get_mbpp_plus(), get_mbpp_plus_hash(), MBPP_OUTPUT_NOT_NONE_TASKS
    expected = get_groundtruth(problems, digest, not_none)
    # One pickle per task too, so an evaluation ships (and holds) only the tasks it needs.
    split_dir = os.path.join(os.environ["XDG_CACHE_HOME"], "evalplus", digest + ".tasks")
    os.makedirs(split_dir, exist_ok=True)
    for task_id, oracle in expected.items():
        with open(os.path.join(split_dir, task_id.replace("/", "_") + ".pkl"), "wb") as handle:
            pickle.dump(oracle, handle, protocol=pickle.HIGHEST_PROTOCOL)
    print(digest)


def main():
    mode = sys.argv[1]
    if mode == "prepare":
        _prepare()
        return
    _harden_self()
    header, blobs = _read_request(sys.stdin.buffer)
    sys.stdin.close()
    nonce = header.pop("nonce")
    stdout = sys.stdout

    def emit(kind, payload):
        stdout.write("%s %s %s\n" % (kind, nonce, json.dumps(payload)))
        stdout.flush()

    (_evaluate if mode == "evaluate" else _reference)(header, blobs, emit)
    emit("DONE", {})
    stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
