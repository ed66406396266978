"""CLI verbs `diff` and `baseline capture|check` over OutcomeSet JSON files.

`diff` and `baseline check` end in a verdict in words (better, worse, equivalent within ±m,
inconclusive) for the margin `--margin` in percentage points.

Exit codes: 0 when the comparison was made; with --exit-on-regression, 1 on a significant
regression only; 2 (via cli.main) on errors, including a gate refused for a non-canonical run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from harness.cli.common import number
from harness.errors import ComparisonError
from harness.files import write_text_atomic
from harness.packs.selection import selection_args
from harness.paths import COMPOSE_DIR
from harness.regress import baseline as baselines
from harness.regress.compare import (
    DEFAULT_ALPHA,
    DEFAULT_MARGIN_POINTS,
    Comparison,
    compare,
    format_comparison,
    regression_gate,
)
from harness.regress.outcomes import OutcomeSet, load_outcome_set
from harness.serving import compose as serving
from harness.serving.profiles import Profile, get_profile

EXIT_REGRESSION = 1


def _finish(comparison: Comparison, args: argparse.Namespace) -> int:
    print(format_comparison(comparison))
    if args.save_json:
        write_text_atomic(args.save_json, comparison.model_dump_json(indent=2) + "\n")
    if args.exit_on_regression and regression_gate(comparison):
        print("significant regression: exiting non-zero (--exit-on-regression)")
        return EXIT_REGRESSION
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    return _finish(compare(load_outcome_set(args.a), load_outcome_set(args.b), args.alpha, args.margin), args)


def _thinking_mode(args: argparse.Namespace, runs) -> str:
    return args.thinking_mode or runs[0].thinking_mode


def _run_packs(args: argparse.Namespace, profile: Profile, repeats: int) -> list[OutcomeSet]:
    """Run the packs `repeats` times against the profile's server (started if needed)."""
    if not profile.is_api:  # an API endpoint is already up
        serving.up(serving.deployment_for(get_profile(args.config, profile.id), COMPOSE_DIR))
    runs_dir = args.results_dir / "baselines" / "runs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outcome_sets = []
    for repeat in range(1, repeats + 1):
        path = runs_dir / f"{profile.id}-{stamp}-{repeat}.json"
        argv = [sys.executable, "-m", "harness", "packs", "run", "--profile", profile.id, "--config", str(args.config),
                "--save-json", str(path), *selection_args(args.packs)]
        print(f"[baseline] repeat {repeat}/{repeats}: {path}", file=sys.stderr, flush=True)
        if subprocess.run(argv, stdin=subprocess.DEVNULL).returncode != 0:
            raise ComparisonError(f"packs run {repeat}/{repeats} for [{profile.id}] failed (see its error above)")
        outcome_sets.append(load_outcome_set(path))
    return outcome_sets


def cmd_baseline_capture(args: argparse.Namespace) -> int:
    profile = get_profile(args.config, args.profile, require_model=False)
    runs = ([load_outcome_set(path) for path in args.outcomes] if args.outcomes
            else _run_packs(args, profile, args.repeat))
    mode = _thinking_mode(args, runs)
    built = baselines.build_baseline(profile.id, mode, runs, min_runs=args.min_runs)
    path = baselines.write_baseline(built, baselines.baseline_path(args.results_dir, profile.id, mode))
    flaky = sum(1 for s in built.scenarios if 0 < s.pass_count < built.runs)
    print(f"baseline {path}: {len(built.scenarios)} scenarios over {built.runs} repeats, "
          f"{sum(s.majority_passed for s in built.scenarios)} pass by majority, {flaky} flaky"
          + ("" if built.canonical else " (NON-CANONICAL: cannot gate)"))
    return 0


def cmd_baseline_check(args: argparse.Namespace) -> int:
    profile = get_profile(args.config, args.profile, require_model=False)
    stored_any = sorted((args.results_dir / baselines.BASELINES_SUBDIR).glob(f"{profile.id}__*.json"))
    if not stored_any:  # before running any packs: there is nothing to check against
        raise ComparisonError(f"{args.results_dir / baselines.BASELINES_SUBDIR}: no baseline for [{profile.id}] "
                              f"(capture one with `make baseline-capture PROFILE={profile.id}`)")
    fresh = load_outcome_set(args.outcomes) if args.outcomes else _run_packs(args, profile, 1)[0]
    mode = args.thinking_mode or fresh.thinking_mode
    stored = baselines.load_baseline(baselines.baseline_path(args.results_dir, profile.id, mode))
    return _finish(baselines.check_against_baseline(stored, fresh, args.alpha, args.margin), args)


_finite = number(float)


def _margin_points(text: str) -> float:
    """--margin: percentage points strictly between 0 and 100."""
    value = _finite(text)
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be > 0 and < 100 percentage points, got {text!r}")
    return value


_margin_points.__name__ = "float"  # argparse names the type in its messages


def _gate_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--alpha", type=number(float, above=0, high=0.5), default=DEFAULT_ALPHA,
                     help="significance level (default 0.05)")
    sub.add_argument("--margin", type=_margin_points, default=DEFAULT_MARGIN_POINTS, metavar="POINTS",
                     help="equivalence margin on the pass rate, percentage points (default "
                          f"{DEFAULT_MARGIN_POINTS:g}): 'equivalent within ±POINTS' needs B's pass rate "
                          "provably that close to A's")
    sub.add_argument("--exit-on-regression", action="store_true",
                     help="exit 1 on a statistically significant regression (refused for non-canonical runs)")
    sub.add_argument("--save-json", type=Path, help="also write the comparison as JSON")


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add `diff` and `baseline capture|check` to the top-level verbs."""
    text = ("compare two outcome sets: fixed/regressed/stable scenarios, per-pack deltas, McNemar p, "
            "equivalence within --margin and a verdict in words")
    sub = verbs.add_parser("diff", parents=[common], help=text, description=text)
    sub.set_defaults(func=cmd_diff)
    sub.add_argument("a", type=Path, help="reference outcome set (JSON)")
    sub.add_argument("b", type=Path, help="outcome set compared against A (JSON)")
    _gate_options(sub)

    text = "capture an n>=3 baseline for a profile, or check a fresh run against it"
    base = verbs.add_parser("baseline", parents=[common], help=text, description=text)
    actions = base.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, func, help_text in [
            ("capture", cmd_baseline_capture, "aggregate repeated runs into results/baselines/PROFILE__MODE.json"),
            ("check", cmd_baseline_check, "compare a fresh run with the stored baseline")]:
        sub = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        sub.add_argument("profile")
        sub.add_argument("--results-dir", type=Path, default=Path("results"), help="default ./results")
        sub.add_argument("--thinking-mode", help="on / off / default (default: as recorded in the outcome set)")
        sub.add_argument("--packs", default="medium",
                         help="when running the packs: quick, medium (default) or comma-separated pack / PACK/ID ids")
        if name == "capture":
            sub.add_argument("--outcomes", type=Path, nargs="+",
                             help="outcome sets or packs result files of repeated runs (default: run the packs)")
            sub.add_argument("--repeat", type=number(int, low=1, high=100), default=baselines.MIN_BASELINE_RUNS,
                             help=f"packs runs to aggregate when no --outcomes (default {baselines.MIN_BASELINE_RUNS})")
            sub.add_argument("--min-runs", type=number(int, low=3, high=100), default=baselines.MIN_BASELINE_RUNS,
                             help=f"repeats required (default {baselines.MIN_BASELINE_RUNS})")
        else:
            sub.add_argument("--outcomes", type=Path,
                             help="outcome set or packs result of the fresh run (default: run the packs once)")
            _gate_options(sub)
