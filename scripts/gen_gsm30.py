"""Generate packs/gsm-30: grade-school word problems from our own templates, several numbers each.

Ten templates, three instances each (different numbers and names, drawn from one seeded
generator), so a report can say whether a model is robust to the numbers changing and not
only how many it got right. Every answer is an exact integer. Each scenario records its
template and values in ``expected`` so tests can recompute the answer independently.

    python scripts/gen_gsm30.py            # (re)write packs/gsm-30/
    python scripts/gen_gsm30.py --check    # exit 1 if the committed files differ from the output
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 20240530
INSTANCES = 3
PACK_DIR = Path(__file__).resolve().parents[1] / "packs" / "gsm-30"
SYSTEM = ("Solve the word problem. Work it out, then end with one final line of the form "
          "'ANSWER: <number>' (the number only, no units).")
NAMES = ["Amara", "Bruno", "Chen", "Dalia", "Emeka", "Farah", "Gustav", "Hana", "Ivo", "Jonas", "Keiko", "Luis",
         "Mira", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sami", "Tove", "Umar", "Vera", "Wen", "Yara"]

Problem = tuple[str, dict[str, int], int, str]  # question, values, answer, worked solution


def _bakery(rng: random.Random, name: str) -> Problem:
    v = {"trays": rng.randint(3, 9), "per_tray": rng.choice([6, 8, 12]), "sold": 0, "given": 0}
    total = v["trays"] * v["per_tray"]
    v["sold"] = rng.randint(total // 3, total // 2)
    v["given"] = rng.randint(2, 6)
    answer = total - v["sold"] - v["given"]
    question = (f"{name} bakes {v['trays']} trays of muffins with {v['per_tray']} muffins on each tray. "
                f"{name} sells {v['sold']} muffins at the market and gives {v['given']} to the neighbours. "
                "How many muffins are left?")
    worked = f"{v['trays']} × {v['per_tray']} = {total}; {total} − {v['sold']} − {v['given']} = {answer}"
    return question, v, answer, worked


def _savings(rng: random.Random, name: str) -> Problem:
    v = {"weekly": rng.choice([5, 7, 12, 15, 20]), "weeks": rng.randint(6, 15), "spent": 0}
    saved = v["weekly"] * v["weeks"]
    v["spent"] = rng.randint(saved // 4, saved // 2)
    answer = saved - v["spent"]
    question = (f"{name} puts ${v['weekly']} into a jar every week for {v['weeks']} weeks, then spends "
                f"${v['spent']} of it on a bicycle helmet. How many dollars are left in the jar?")
    return question, v, answer, f"{v['weekly']} × {v['weeks']} = {saved}; {saved} − {v['spent']} = {answer}"


def _garden(rng: random.Random, name: str) -> Problem:
    v = {"rows": rng.randint(3, 8), "per_row": rng.randint(4, 9), "per_plant": rng.randint(5, 12)}
    plants = v["rows"] * v["per_row"]
    answer = plants * v["per_plant"]
    question = (f"{name}'s garden has {v['rows']} rows of tomato plants with {v['per_row']} plants in each row. "
                f"Every plant gives {v['per_plant']} tomatoes. How many tomatoes does the garden give in all?")
    return question, v, answer, f"{v['rows']} × {v['per_row']} = {plants}; {plants} × {v['per_plant']} = {answer}"


def _bus(rng: random.Random, name: str) -> Problem:
    v = {"start": rng.randint(20, 40), "off1": rng.randint(3, 9), "on1": rng.randint(2, 12),
         "off2": rng.randint(4, 10), "on2": rng.randint(1, 8)}
    answer = v["start"] - v["off1"] + v["on1"] - v["off2"] + v["on2"]
    question = (f"A bus driven by {name} leaves the depot with {v['start']} passengers. At the first stop "
                f"{v['off1']} people get off and {v['on1']} get on. At the second stop {v['off2']} get off and "
                f"{v['on2']} get on. How many passengers are on the bus now?")
    return question, v, answer, (f"{v['start']} − {v['off1']} + {v['on1']} − {v['off2']} + {v['on2']} "
                                 f"= {answer}")


def _reading(rng: random.Random, name: str) -> Problem:
    v = {"weekday_pages": rng.randint(8, 25), "weekend_pages": rng.randint(20, 45), "weeks": rng.randint(2, 5)}
    week = 5 * v["weekday_pages"] + 2 * v["weekend_pages"]
    answer = week * v["weeks"]
    question = (f"{name} reads {v['weekday_pages']} pages on each weekday (Monday to Friday) and "
                f"{v['weekend_pages']} pages on each day of the weekend. How many pages does {name} read in "
                f"{v['weeks']} weeks?")
    worked = f"5 × {v['weekday_pages']} + 2 × {v['weekend_pages']} = {week}; × {v['weeks']} = {answer}"
    return question, v, answer, worked


def _change(rng: random.Random, name: str) -> Problem:
    v = {"apples": rng.randint(2, 6), "apple_cents": rng.choice([35, 40, 45, 55]), "pears": rng.randint(2, 5),
         "pear_cents": rng.choice([50, 60, 65, 75]), "bill": rng.choice([5, 10])}
    cost = v["apples"] * v["apple_cents"] + v["pears"] * v["pear_cents"]
    answer = v["bill"] * 100 - cost
    question = (f"{name} buys {v['apples']} apples at {v['apple_cents']} cents each and {v['pears']} pears at "
                f"{v['pear_cents']} cents each, and pays with a ${v['bill']} note. How much change, in cents, "
                f"does {name} get?")
    return question, v, answer, f"cost {cost} cents; {v['bill'] * 100} − {cost} = {answer}"


def _trip(rng: random.Random, name: str) -> Problem:
    v = {"speed": rng.choice([12, 14, 15, 16, 18]), "hours": rng.randint(2, 5), "walk_km": rng.randint(2, 9)}
    answer = v["speed"] * v["hours"] + v["walk_km"]
    question = (f"{name} cycles at {v['speed']} km per hour for {v['hours']} hours and then walks another "
                f"{v['walk_km']} km. How many kilometres does {name} travel in total?")
    return question, v, answer, f"{v['speed']} × {v['hours']} + {v['walk_km']} = {answer}"


def _bill(rng: random.Random, name: str) -> Problem:
    v = {"friends": rng.randint(3, 6), "tip": rng.choice([6, 9, 12, 15]), "bill": 0}
    each = rng.randint(14, 30)
    while (v["friends"] * each - v["tip"]) <= 0:
        each += 1
    v["bill"] = v["friends"] * each - v["tip"]
    answer = (v["bill"] + v["tip"]) // v["friends"]
    question = (f"{name} and friends, {v['friends']} people in all, have dinner. The bill is ${v['bill']} and "
                f"they add a ${v['tip']} tip. They split the total equally. How many dollars does each person pay?")
    return question, v, answer, f"({v['bill']} + {v['tip']}) / {v['friends']} = {answer}"


def _ages(rng: random.Random, name: str) -> Problem:
    v = {"age": rng.randint(7, 15), "older_by": rng.randint(2, 9), "years": rng.randint(3, 10)}
    answer = v["age"] + (v["age"] + v["older_by"]) + 2 * v["years"]
    question = (f"{name} is {v['age']} years old. {name}'s cousin is {v['older_by']} years older. In "
                f"{v['years']} years, what will the sum of their two ages be?")
    return question, v, answer, (f"cousin {v['age'] + v['older_by']}; {v['age']} + {v['age'] + v['older_by']} "
                                 f"+ 2 × {v['years']} = {answer}")


def _discount(rng: random.Random, name: str) -> Problem:
    v = {"price": 20 * rng.randint(3, 12), "percent_off": rng.choice([10, 15, 20, 25, 30, 40])}
    answer = v["price"] * (100 - v["percent_off"]) // 100
    question = (f"A coat costs ${v['price']}. In a sale it is {v['percent_off']}% off. How many dollars does "
                f"{name} pay for the coat in the sale?")
    return question, v, answer, f"{v['price']} × {100 - v['percent_off']}/100 = {answer}"


TEMPLATES: dict[str, Callable[[random.Random, str], Problem]] = {
    "bakery": _bakery, "savings": _savings, "garden": _garden, "bus": _bus, "reading": _reading,
    "change": _change, "trip": _trip, "bill": _bill, "ages": _ages, "discount": _discount,
}

PACK_META: dict[str, Any] = {
    "id": "gsm-30", "version": "1.0.0", "title": "GSM-30",
    "license": "Apache-2.0",
    "description": ("Grade-school word problems from 10 templates, 3 instances each with other numbers and names; "
                    "exact integer answers on an 'ANSWER:' line. Per-template consistency shows whether a "
                    "model is robust to the numbers changing. Generated by scripts/gen_gsm30.py."),
    "sampling_defaults": {"max_tokens": 512}, "default_thinking": True, "thinking_max_tokens": 4096,
    "default_max_seconds": 120, "timeout_reference_tps": 30, "baseline_max_tokens": 512, "modes": ["reasoning"],
}


def scenarios(seed: int = SEED, instances: int = INSTANCES) -> list[dict[str, Any]]:
    """Every scenario, in template order; the same seed always gives the same list."""
    rng = random.Random(seed)
    rows = []
    for template, make in TEMPLATES.items():
        names = rng.sample(NAMES, instances)
        for index, name in enumerate(names, start=1):
            question, values, answer, worked = make(rng, name)
            rows.append({
                "id": f"{template}-{index}", "category": template,
                "description": f"template {template}, instance {index}",
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
                "verifier": {"type": "reason_math", "answer": str(answer), "tolerance": 0},
                "expected": {"template": template, "instance": index, "name": name, "values": values,
                             "answer": answer},
                "reference_turns": [{"content": f"{worked}.\nANSWER: {answer}"}],
            })
    return rows


def render(seed: int = SEED) -> dict[str, str]:
    """File name -> exact text of the pack's two files."""
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in scenarios(seed))
    return {"pack.json": json.dumps(PACK_META, indent=2) + "\n", "scenarios.jsonl": lines}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PACK_DIR)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        stale = [n for n, text in files.items()
                 if not (args.out / n).is_file() or (args.out / n).read_text(encoding="utf-8") != text]
        if stale:
            print(f"{args.out}: {', '.join(stale)} differ from the generator; run scripts/gen_gsm30.py",
                  file=sys.stderr)
            return 1
        print(f"{args.out}: up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(scenarios())} scenarios to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
