"""CLI verbs for quality packs: ``packs run``, ``packs list``, ``inspect``, ``rescore``, ``judge calibrate``.

Exit 0 when a run completed — scores are information, not failure; errors exit via cli.main.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.cli.common import add_endpoint_args, client_for, number, resolve_target
from harness.endpoint.client import RetryPolicy
from harness.endpoint.target import looks_like_url, open_client, target_from_profile, target_from_url
from harness.errors import Interrupted, PackError
from harness.evalplus import sandbox as evalplus_sandbox
from harness.files import check_output_location, write_text_atomic
from harness.packs import loader, reasoning, rubric, thinking
from harness.packs import summary as report
from harness.packs.rescore import rescore
from harness.packs.runner import RunOptions, read_result, run_packs, stderr_progress, write_result
from harness.packs.schema import RunResult, Sampling, SamplingSource
from harness.paths import CACHE_DIR, PACKS_DIR, default_data_dir
from harness.serving.profiles import get_profile

_SAMPLER_FLAGS = ("temperature", "top_p", "top_k", "min_p", "seed")


def _selection(args: argparse.Namespace) -> tuple[list, str, reasoning.Materialized]:
    """The packs to run, the mode's name, and the dataset packs (built from files, or unavailable)."""
    if args.pack_file:
        loaded = [loader.load_pack(path) for path in args.pack_file]
        for line in (w for p in loaded for w in p.warnings):  # BenchLocal files: unknown fields, renamed ids
            print(f"warning: {line}", file=sys.stderr)
        return loaded, "pack-file", reasoning.Materialized()
    packs = loader.discover_packs(args.packs_dir)
    datasets = reasoning.discover_dataset_packs(args.packs_dir)

    def built(specs: list[reasoning.DatasetPack]) -> reasoning.Materialized:
        return reasoning.materialize(specs, env=os.environ, data_dir=default_data_dir(), cache_dir=CACHE_DIR)

    if args.scenario:
        return loader.select(packs, scenario_refs=args.scenario), "scenario", reasoning.Materialized()
    if args.pack:
        from_data = [datasets[p] for p in args.pack if p in datasets and p not in packs]
        plain = [p for p in args.pack if p not in datasets or p in packs]
        return (loader.select(packs, pack_ids=plain) if plain else []), "pack", built(from_data)
    mode = "quick" if args.quick else "full" if args.full else reasoning.MODE if args.reasoning else "medium"
    return loader.select(packs, mode=mode), mode, built([d for d in datasets.values() if mode in d.pack.modes])


def _sandbox_filter(packs: list, args: argparse.Namespace) -> list:
    """--sandboxed-only / --no-sandboxed narrow any selection to (or away from) the agent-sandbox packs."""
    if args.sandboxed is None:
        return packs
    return [p for p in packs if (p.meta.sandbox is not None) == args.sandboxed]


@contextmanager
def open_judge(spec: str | None, config: Path) -> Iterator[rubric.Judge | None]:
    """The rubric judge named by --judge (a profile id or a URL), probed once; None without one.
    Its key comes from its own profile's variable and it never shares the judged profile's spend ledger."""
    if not spec:
        yield None
        return
    if looks_like_url(spec):
        target = target_from_url(spec)
    else:
        target = target_from_profile(get_profile(config, spec, require_model=False))
    client = open_client(target, os.environ, timeout_s=rubric.JUDGE_TIMEOUT_S)
    try:
        yield rubric.Judge(client=client, info=client.probe(), profile=target.profile_id)
    finally:
        client.close()


def cmd_packs_run(args: argparse.Namespace) -> int:
    if not (args.profile or args.base_url):
        raise PackError("packs run: give --profile P or --base-url URL")
    target, profile = resolve_target(args, args.profile or args.base_url, args.config)
    # A compose server's slots are the default (read from /props); an API endpoint has none to read.
    in_flight = None if profile is None else profile.requests_in_flight if profile.is_api else profile.bench_parallel
    packs, mode, from_data = _selection(args)
    packs = _sandbox_filter(packs + from_data.packs, args)
    if not packs and not from_data.unavailable:
        raise PackError(f"no packs selected from {args.packs_dir}")
    if not packs:
        raise PackError("; ".join(f"{u.pack_id}: dataset-unavailable ({u.reason}); {u.how_to_enable}"
                                  for u in from_data.unavailable))
    if "evalplus" in from_data.judges:
        evalplus_sandbox.require_image(evalplus_sandbox.SANDBOX_IMAGE)  # before any request: one line
    explicit = {name: getattr(args, name) for name in _SAMPLER_FLAGS if getattr(args, name) is not None}
    if args.sampling_from_server and explicit:
        raise PackError("--sampling-from-server and explicit sampler flags exclude each other")
    source: SamplingSource = "server" if args.sampling_from_server else "explicit" if explicit else "canonical"
    if args.resume and not args.save_json:
        raise PackError("--resume needs --save-json PATH (the journal lives beside it)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    save = args.save_json or Path("results") / "packs" / f"{target.profile_id or 'endpoint'}-{stamp}.json"
    check_output_location(save)  # before any request: a bad path costs no work
    options = RunOptions(base_url=target.display_url, model=target.model_id, profile_id=target.profile_id, mode=mode,
                         sampling_source=source,
                         explicit_sampling=Sampling(**explicit), thinking=args.thinking,
                         thinking_budget_tokens=args.thinking_budget, max_tokens_cap=args.max_tokens,
                         timeout_override_s=args.timeout_s, concurrency=args.parallel or in_flight,
                         retries=args.retries, progress=None if args.no_progress else stderr_progress,
                         api_key_env=target.api_key_env, limit_per_pack=args.limit)
    retry = RetryPolicy(max_retries=args.retries)
    journal = save.with_name(save.name + ".journal.jsonl")
    try:
        with client_for(target, retry=retry, max_connections=max(8, args.parallel or in_flight or 1)) as client, \
                open_judge(args.judge, args.config) as judge:
            result = run_packs(packs, options, journal_path=journal, resume=args.resume, client=client,
                               rubric_judge=judge, sandbox_judges=from_data.judges,
                               unavailable=from_data.unavailable)
    except KeyboardInterrupt:
        kept = max(0, len(journal.read_text(encoding="utf-8").splitlines()) - 1) if journal.is_file() else 0
        raise Interrupted(f"interrupted: {kept} finished scenario(s) are kept in {journal}; run the same command "
                          "with --resume to finish the rest") from None
    write_result(result, save)
    print(report.summary(result))
    extra = reasoning_lines(result)
    if extra:
        print("\n" + extra)
    print(f"\nResult: {save}")
    if args.strict_thinking and result.thinking_validity in ("silent", "contaminated"):
        raise PackError(f"--strict-thinking: thinking was {result.thinking_validity} in this run "
                        f"({save}); see the Thinking lines above")
    return 0


def reasoning_lines(result: RunResult) -> str:
    """Thinking health, template consistency and dataset-unavailable packs (empty when none apply)."""
    return "\n".join(thinking.reasoning_notes(result))


def cmd_judge_calibrate(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    packs = loader.discover_packs(args.packs_dir)
    chosen = loader.select(packs, pack_ids=args.pack) if args.pack else list(packs.values())
    chosen = [p for p in chosen if any(s.verifier.type == "rubric" for s in p.scenarios)]
    if not chosen:
        raise PackError(f"no pack in {args.packs_dir} has rubric-judged scenarios")
    with open_judge(args.judge, args.config) as judge:
        assert judge is not None  # --judge is required
        calibration = rubric.calibrate(judge, chosen, stderr_progress)
        model = judge.info.model
    rows: dict[str, dict[str, str]] = {}
    for item in calibration.items:
        row = rows.setdefault(f"{item.pack_id}/{item.scenario_id}", {})
        row[item.grade] = f"{item.judged_mean:.2f}" if item.judged_mean is not None else "judge_error"
    print(tabulate([[ref, row.get("strong", "-"), row.get("weak", "-")] for ref, row in rows.items()],
                   headers=["scenario", "strong (1-5)", "weak (1-5)"], disable_numparse=True))
    agreement = "n/a" if calibration.agreement is None else f"{calibration.agreement:.0%}"
    correlation = "n/a" if calibration.rank_correlation is None else f"{calibration.rank_correlation:+.2f}"
    print(f"\nJudge {model}: separated strong from weak in {calibration.separated}/{calibration.tasks} task(s) "
          f"(agreement {agreement}); rank correlation {correlation}; {calibration.errors} judge error(s)")
    if args.save_json:
        write_text_atomic(args.save_json, calibration.model_dump_json(indent=1))
        print(f"Calibration: {args.save_json}")
    return 0


def cmd_packs_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    rows = [[p.meta.id, p.meta.version, len(p.scenarios), ",".join(sorted({s.verifier.type for s in p.scenarios})),
             ",".join(p.meta.modes), p.meta.title] for p in loader.discover_packs(args.packs_dir).values()]
    rows += [[d.pack.id, d.pack.version, f"from {d.dataset.env}", d.dataset.kind, ",".join(d.pack.modes),
              d.pack.title] for d in reasoning.discover_dataset_packs(args.packs_dir).values()]
    print(tabulate(rows, headers=["pack", "version", "scenarios", "verifiers", "modes", "title"]))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    result = read_result(args.result)
    refs = [(f"{s.pack_id}/{s.scenario_id}", s.scenario_id) for p in result.packs for s in p.scenarios]
    if args.scenario and not any(args.scenario in ref for ref in refs):
        known = ", ".join(ref for ref, _ in refs[:10]) + (" …" if len(refs) > 10 else "")
        raise PackError(f"{args.result}: no scenario {args.scenario!r} (known: {known})")
    print(report.summary(result))
    for pack in result.packs:
        for scenario in pack.scenarios:
            ref = f"{scenario.pack_id}/{scenario.scenario_id}"
            if args.scenario and args.scenario not in (ref, scenario.scenario_id):
                continue
            if args.failed and scenario.status == "pass":
                continue
            if args.scenario or args.failed:
                print()
                print(report.describe_scenario(scenario, full=args.full))
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    result = read_result(args.result)
    new, changed = rescore(result)
    for old, now in changed:
        print(f"{old.pack_id}/{old.scenario_id}: {old.score:.0f} {old.failure_mode} "
              f"-> {now.score:.0f} {now.failure_mode}")
    target = args.result if args.in_place else args.out
    if target is None:
        if changed:
            raise PackError(f"{args.result}: {len(changed)} verdict(s) changed; pass --in-place or --out PATH "
                            "to write them (the file keeps its old numbers until then)")
        print(f"{args.result}: no verdict changed")
        return 0
    write_result(new, target)
    print(report.summary(new))
    print(f"\nRescored {len(changed)} changed verdict(s) -> {target}")
    return 0


def register(verbs, common: argparse.ArgumentParser) -> None:
    """Add ``packs run|list``, ``inspect`` and ``rescore`` to the top-level verbs."""
    packs = verbs.add_parser("packs", parents=[common], help="quality packs: run or list",
                             description="deterministic, verifier-backed quality packs")
    sub = packs.add_subparsers(dest="packs_verb", required=True, metavar="ACTION")
    run = sub.add_parser("run", parents=[common], help="run quality packs against a profile or endpoint")
    run.set_defaults(func=cmd_packs_run)
    where = run.add_argument_group("target")
    where.add_argument("--profile", help="profile id in --config (its server must be up)")
    where.add_argument("--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080")
    pick = run.add_mutually_exclusive_group()
    pick.add_argument("--quick", action="store_true", help="packs tagged quick (toolcall + instructfollow)")
    pick.add_argument("--medium", action="store_true", help="all packs tagged medium (default)")
    pick.add_argument("--full", action="store_true",
                      help="every pack: the five deterministic ones plus the agent packs (bugfind-15, cli-40, "
                           "agent-20, repo-12)")
    pick.add_argument("--reasoning", action="store_true",
                      help="the reasoning suite, thinking on: gsm-30, humaneval-plus-30 (EvalPlus sandbox), and "
                           "livecodebench / gpqa when LIVECODEBENCH_PATH / GPQA_PATH name their files")
    pick.add_argument("--pack", action="append", metavar="ID", help="one pack by id (repeatable)")
    pick.add_argument("--scenario", action="append", metavar="PACK/ID", help="one scenario (repeatable)")
    pick.add_argument("--pack-file", action="append", type=Path, metavar="PATH",
                      help="a BenchLocal-format .jsonl pack or a pack folder (repeatable)")
    sandboxed = run.add_mutually_exclusive_group()
    sandboxed.add_argument("--sandboxed-only", dest="sandboxed", action="store_true", default=None,
                           help="only the packs judged in the agent sandbox")
    sandboxed.add_argument("--no-sandboxed", dest="sandboxed", action="store_false",
                           help="leave out the packs judged in the agent sandbox")
    run.add_argument("--packs-dir", type=Path, default=PACKS_DIR)
    run.add_argument("--save-json", type=Path, help="result file (default results/packs/<profile>-<time>.json)")
    run.add_argument("--resume", action="store_true", help="skip scenarios already in --save-json's journal")
    think = run.add_mutually_exclusive_group()
    think.add_argument("--thinking", "--enable-thinking", dest="thinking", action="store_true", default=None)
    think.add_argument("--no-thinking", dest="thinking", action="store_false")
    run.add_argument("--thinking-max-tokens", "--thinking-budget", dest="thinking_budget",
                     type=number(int, low=0, high=1_000_000), metavar="TOKENS",
                     help="thinking budget: tokens added to max_tokens when thinking is on (default: the pack's "
                          "thinking_max_tokens)")
    run.add_argument("--strict-thinking", action="store_true",
                     help="exit non-zero when thinking was silent or contaminated (after saving the result)")
    run.add_argument("--sampling-from-server", action="store_true", help="send no sampler fields (NON-CANONICAL)")
    run.add_argument("--temperature", type=number(float, low=0, high=10))
    run.add_argument("--top-p", type=number(float, low=0, high=1))
    run.add_argument("--top-k", type=number(int, low=0))
    run.add_argument("--min-p", type=number(float, low=0, high=1))
    run.add_argument("--seed", type=int)
    run.add_argument("--max-tokens", type=number(int, low=1, high=1_000_000), help="cap every scenario's max_tokens")
    run.add_argument("--limit", type=number(int, low=1), metavar="N", help="only the first N scenarios of each pack")
    run.add_argument("--timeout-s", "--timeout-per-case", dest="timeout_s", type=number(float, above=0, high=86400),
                     metavar="S",
                     help="fixed seconds per scenario (default: scaled from the pack's budget and measured speed)")
    run.add_argument("--parallel", "--concurrency", dest="parallel", type=number(int, low=1, high=256),
                     help="requests in flight (default: the profile's BENCH_PARALLEL, else server slots; "
                          "ceiling: slots)")
    add_endpoint_args(run)
    run.add_argument("--retries", type=number(int, low=0, high=10), default=2,
                     help="retries for 5xx / lost connections (default 2)")
    run.add_argument("--no-progress", action="store_true", help="no per-scenario lines on stderr")
    run.add_argument("--judge", metavar="PROFILE",
                     help="profile id (or URL) of the model that scores rubric-judged scenarios; without it "
                          "they are left out")
    listing = sub.add_parser("list", parents=[common], help="list the packs in --packs-dir")
    listing.add_argument("--packs-dir", type=Path, default=PACKS_DIR)
    listing.set_defaults(func=cmd_packs_list)

    inspect = verbs.add_parser("inspect", parents=[common], help="show a packs result: table, failures, scenarios")
    inspect.add_argument("result", type=Path)
    inspect.add_argument("--failed", action="store_true", help="every scenario that did not pass")
    inspect.add_argument("--scenario", metavar="[PACK/]ID", help="one scenario")
    inspect.add_argument("--full", action="store_true", help="with exact requests and raw replies")
    inspect.set_defaults(func=cmd_inspect)
    again = verbs.add_parser("rescore", parents=[common], help="re-judge saved replies with the current verifiers")
    again.add_argument("result", type=Path)
    target = again.add_mutually_exclusive_group()
    target.add_argument("--in-place", action="store_true", help="rewrite RESULT (atomically)")
    target.add_argument("--out", type=Path, help="write the rescored result here")
    again.set_defaults(func=cmd_rescore)
    judging = verbs.add_parser("judge", parents=[common], help="rubric judges: calibrate one on graded references")
    judge_sub = judging.add_subparsers(dest="judge_verb", required=True, metavar="ACTION")
    calibrate = judge_sub.add_parser("calibrate", parents=[common],
                                     help="score each rubric's strong and weak reference answers with a judge")
    calibrate.add_argument("--judge", required=True, metavar="PROFILE", help="profile id (or URL) of the judge")
    calibrate.add_argument("--pack", action="append", metavar="ID", help="only these packs (repeatable)")
    calibrate.add_argument("--packs-dir", type=Path, default=PACKS_DIR)
    calibrate.add_argument("--save-json", type=Path, help="write the calibration here")
    calibrate.set_defaults(func=cmd_judge_calibrate)
