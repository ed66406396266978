"""Runs ONE model-written sample against a list of inputs, inside the sandbox container.

Started by checker.py as a fresh interpreter for every (sample, test set). It receives
only the code, the entry point, the inputs and the per-test time limits (a pickle from
the trusted checker on stdin) -- never the expected outputs. It sends back each output as
a plain, type-tagged JSON value on the pipe fd named in argv[1]. Objects of any other type (e.g. one whose __eq__
always says True) cannot be encoded and count as a failure, so nothing the sample defines
ever runs in the process that decides the verdict.

EvalPlus's own guard, I/O swallowing and per-test time limit are applied (loaded from the
evalplus package by file path, which avoids importing numpy into every worker).
"""

import importlib.util
import json
import os
import pickle
import sys

sys.set_int_max_str_digits(0)
_MAX_DEPTH = 64
_STREAM_MIN_ITEMS = 4096  # longer top-level lists/tuples are sent in parts
_PART_BYTES = 4 << 20


class _Unsupported(Exception):
    pass


def _load_evalplus_utils():
    spec = importlib.util.find_spec("evalplus")
    path = os.path.join(os.path.dirname(spec.origin), "eval", "utils.py")
    module_spec = importlib.util.spec_from_file_location("_evalplus_eval_utils", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _encoder(output_not_none, exact_only=False):
    """The value encoder. exact_only (the checker's use, on expected values) refuses what
    equal encodings would not prove equal: NaN (never equal to itself) and numpy values."""
    # Bind everything now: the sample may later patch builtins or modules in this process.
    _type, _str, _hex, _ihex, _getattr, _set, _map = type, str, float.hex, hex, getattr, set, map
    _mods = sys.modules
    import collections

    _dict_items = dict.items
    _mappings = (collections.Counter, collections.OrderedDict, collections.defaultdict)  # compare as dicts
    scalars = {bool: "b", str: "s"}
    _FLAT, _BOUND = {int, float, str}, 2 ** 63

    def enc(x, depth=0):
        if depth > _MAX_DEPTH:
            raise _Unsupported("nesting deeper than %d" % _MAX_DEPTH)
        t = _type(x)
        if x is None:
            return None
        if t in scalars:
            return [scalars[t], x]
        if t is int:
            return ["i", _ihex(x)]  # hex: linear time even for million-digit ints
        if exact_only and (t is float or t is complex) and x != x:
            raise _Unsupported("NaN")
        if t is float:
            return ["f", _hex(x)]
        if t is complex:
            return ["c", _hex(x.real), _hex(x.imag)]
        if t is bytes:
            return ["y", x.hex()]
        if (t is list or t is tuple) and x:
            kinds = _set(_map(_type, x))
            # Fast path for long flat sequences: JSON round-trips str, float (NaN/inf too)
            # and 64-bit ints exactly, and keeps int and float apart ("3" vs "3.0").
            if kinds <= _FLAT:
                ints = [item for item in x if _type(item) is int] if int in kinds else None
                if not ints or (-_BOUND < min(ints) and max(ints) < _BOUND):
                    return ["L" if t is list else "T", x]
        if t is list or t is tuple or t is set or t is frozenset:
            tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[t]
            return [tag, [enc(item, depth + 1) for item in x]]
        if t is dict or t in _mappings:
            return ["d", [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in _dict_items(x)]]
        numpy = None if exact_only else _mods.get("numpy")
        if numpy is not None and _getattr(t, "__module__", "") == "numpy":
            if isinstance(x, numpy.generic) and x.dtype.kind in "biufc":
                return ["n", _str(x.dtype), enc(x.item(), depth + 1)]
            if t is numpy.ndarray and x.dtype.kind in "biufc":
                return ["a", _str(x.dtype), enc(x.tolist(), depth + 1)]
        if output_not_none and depth == 0:  # EvalPlus only asks "is it not None?" for these tasks
            return ["o"]
        raise _Unsupported("returned a %s, which is not a plain value" % _getattr(t, "__name__", "?"))

    return enc


def main():
    _exit = os._exit  # the guard below removes most of os; keep a clean way out
    job = pickle.load(sys.stdin.buffer)
    sys.stdin.close()
    out = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:  # be the first the OOM killer takes
            handle.write("1000")
    except OSError:
        pass
    utils = _load_evalplus_utils()
    enc = _encoder(job["output_not_none"])
    dumps, write, flush = json.dumps, out.write, out.flush
    _type, _len, _list, _min, _max = type, len, list, min, max

    def send(frame):
        write(dumps(frame) + "\n")
        flush()

    def send_value(index, value):
        """One frame for a small value; a long list or tuple goes out in parts of about
        _PART_BYTES each, so a huge output never has to exist twice (or as one string)."""
        t = _type(value)
        if (t is not list and t is not tuple) or _len(value) <= _STREAM_MIN_ITEMS:
            send({"k": "out", "i": index, "v": enc(value)})
            return
        total, start, step = _len(value), 0, 1024
        write('{"k":"seq","i":%d,"t":"%s","n":%d}\n' % (index, "l" if t is list else "t", total))
        while start < total:  # an item that cannot be encoded ends the stream with an "err" frame
            body = dumps(enc(_list(value[start:start + step]), 1))
            write('{"k":"part","i":%d,"c":%d,"v":%s}\n' % (index, _min(step, total - start), body))
            start += step
            step = _max(1, _min(1 << 16, step * _PART_BYTES // _max(1, _len(body))))
        flush()

    with utils.create_tempdir():
        utils.reliability_guard(maximum_memory_bytes=job["max_memory_bytes"])
        exec_globals = {}
        try:
            with utils.swallow_io():
                exec(job["code"], exec_globals)
                fn = exec_globals[job["entry_point"]]
        except BaseException as exc:  # noqa: BLE001 - anything the sample raises is a failure
            send({"k": "exec_error", "msg": "%s: %s" % (type(exc).__name__, str(exc)[:200])})
            out.close()
            _exit(0)
        for index, (args, limit_s) in enumerate(zip(job["inputs"], job["time_limits_s"])):
            try:
                with utils.time_limit(limit_s):
                    with utils.swallow_io():
                        value = fn(*args)
                send_value(index, value)
            except BaseException as exc:  # noqa: BLE001
                send({"k": "err", "i": index, "msg": "%s: %s" % (type(exc).__name__, str(exc)[:200])})
                break
    out.close()
    _exit(0)  # skip interpreter teardown: the guard disabled what tempdir cleanup needs


if __name__ == "__main__":
    main()
