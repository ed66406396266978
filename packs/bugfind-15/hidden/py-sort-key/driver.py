# Exercises leaderboard.py from the current directory; one JSON line per case.
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.getcwd())

import leaderboard  # noqa: E402


def players(*pairs):
    return [{"name": n, "score": s} for n, s in pairs]


CASES = [
    players(("Zoe", 40), ("Adam", 40), ("Mia", 40)),
    players(("Mia", 40), ("Zoe", 55), ("Adam", 40), ("Lena", 70), ("Bo", 12)),
    players(("Cara", 30), ("Abe", 30), ("Ivan", 50), ("Bea", 30), ("Tom", 10), ("Sam", 10)),
    players(("Solo", 3)),
    [],
    players(("Neg", -5), ("Zero", 0), ("Also", -5)),
]
for case in CASES:
    try:
        out = [list(row) for row in leaderboard.rank(case)]
    except Exception as exc:
        out = "raised " + type(exc).__name__
    print(json.dumps(out))
