# Exercises metrics/rolling.py from the current directory; one JSON line per case.
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.getcwd(), "metrics"))


def show(label, fn):
    try:
        value = fn()
        if isinstance(value, list):
            value = [list(v) if isinstance(v, (list, tuple)) else v for v in value]
    except Exception as exc:  # the case's outcome is part of the output
        value = "raised " + type(exc).__name__
    print(json.dumps([label, value]))


import rolling  # noqa: E402

show("windows 4x2", lambda: rolling.windows([1, 2, 3, 4], 2))
show("windows equal", lambda: rolling.windows([1, 2, 3], 3))
show("windows too big", lambda: rolling.windows([1, 2], 3))
show("windows empty", lambda: rolling.windows([], 1))
show("windows single", lambda: rolling.windows([7], 1))
show("windows size 0", lambda: rolling.windows([1, 2], 0))
show("avg report", lambda: rolling.moving_average([10, 20, 30, 40], 2))
show("avg whole", lambda: rolling.moving_average([1, 2, 3, 4, 5], 5))
show("avg 3", lambda: rolling.moving_average([3, 1, 4, 1, 5, 9], 3))
show("max exact", lambda: rolling.max_window_sum([5, 1, 9], 3))
show("max last", lambda: rolling.max_window_sum([3, 1, 4, 1, 5, 9], 2))
show("max none", lambda: rolling.max_window_sum([4], 2))
