# Exercises stats.py from the current directory; one JSON line per case.
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.getcwd())

import stats  # noqa: E402


def norm(key, v):
    # mean and median are compared as floats, so 15 and 15.0 are the same answer
    if key in ("mean", "median") and isinstance(v, (int, float)) and not isinstance(v, bool):
        return round(float(v), 6)
    return v


CASES = [
    [70, 85, 90, 95],
    [1, 2, 3],
    [4, 1, 3, 2],
    [-3, -2],
    [10, 20],
    [1.5, 2.0],
    [5],
    [9, 7, 8, 6, 100, 1],
]
for values in CASES:
    try:
        s = stats.summarize(values)
        out = {k: norm(k, s[k]) for k in ("count", "min", "max", "mean", "median")}
    except Exception as exc:
        out = "raised " + type(exc).__name__
    print(json.dumps([values, out], sort_keys=True))
try:
    stats.summarize([])
    print("empty: accepted")
except ValueError:
    print("empty: ValueError")
except Exception as exc:
    print("empty: raised", type(exc).__name__)
