"""Hostile-input sweep: the CLI as a hostile user drives it, counting what must never happen.

Each probe runs ``python -m harness ...`` in its own scratch folder, with a time limit, against
bad files, bad flags, bad URLs, bad output paths and a scripted endpoint that answers badly.
It prints the totals of probes, tracebacks, hangs, half-written outputs and silent wrong
results (an exit 0 where the input was bad, or a failure where it was fine), and lists every
probe that counted. All but the first must be zero.

    python scripts/hostile_sweep.py            # every probe
    python scripts/hostile_sweep.py --quick    # a sample from every class (what `make test` runs)
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.conftest import GOOD_PROFILE  # noqa: E402
from tests.doubles.model_server import Raw, Reply, Request, ScriptedModelServer  # noqa: E402

GOOD = GOOD_PROFILE.replace("bench-tiny", "bench-x")  # a valid profile; each probe breaks one thing
META = '{"__meta__": true, "pack_id": "x", "version": "1"}'
SCENARIO = ('{"id": "a", "messages": [{"role": "user", "content": "q"}], '
            '"verifier": {"type": "answer_match", "answer": "x"}}')


@dataclass
class Probe:
    """One hostile input: what to set up, what to run, and whether it should fail."""

    name: str
    argv: Callable[[Path], list[str]]
    expect_error: bool = True
    setup: Callable[[Path], None] = lambda tmp: None
    outputs: tuple[str, ...] = ()  # files that must not exist after a failed run
    quick: bool = False
    timeout_s: float = 60
    check: Callable[[Path, subprocess.CompletedProcess], str | None] = lambda tmp, done: None


@dataclass
class Tally:
    probes: int = 0
    tracebacks: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    half_written: list[str] = field(default_factory=list)
    silent_wrong: list[str] = field(default_factory=list)


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / "models").mkdir(exist_ok=True)
        (tmp / "models" / "tiny.gguf").write_bytes(b"GGUF")
        data = content.encode() if isinstance(content, str) else content
        (tmp / name).write_bytes(data)
    return setup


def conf_probes() -> list[Probe]:
    """models.conf values that are wrong, each through the `env` verb (validation, no Docker)."""
    bad = {
        "malformed-header": GOOD.replace("[bench-x]", "[bench-x"),
        "unknown-key": GOOD + "CTX_SIZES=1\n",
        "ctx-not-a-number": GOOD.replace("CTX_SIZE=1024", "CTX_SIZE=32k"),
        "port-out-of-range": GOOD.replace("PORT=18500", "PORT=99999"),
        "health-inf": GOOD + "HEALTH_TIMEOUT_S=inf\n",
        "health-nan": GOOD + "HEALTH_TIMEOUT_S=nan\n",
        "health-negative": GOOD + "HEALTH_TIMEOUT_S=-5\n",
        "extra-args-sets-port": GOOD + "EXTRA_ARGS=--port 9\n",
        "extra-args-open-quote": GOOD + 'EXTRA_ARGS=--alias "x\n',
        "extra-args-empty-word": GOOD + "EXTRA_ARGS=--jinja ''\n",
        "bind-not-an-address": GOOD + "BIND_ADDRESS=my laptop\n",
        "gpus-garbage": GOOD + "GPUS=some\n",
        "bench-parallel-above-slots": GOOD + "PARALLEL=2\nBENCH_PARALLEL=8\n",
        "project-collision": GOOD + GOOD.split("[DEFAULT]\nGPUS=none\n")[1].replace("bench-x", "bench.x"),
        "duplicate-key": GOOD + "PORT=1\n",
        "key-outside-section": "PORT=1\n" + GOOD,
        "api-without-base-url": "[bench-a]\nNAME=A\nPROVIDER=openai-compatible\n",
        "api-with-model": "[bench-a]\nNAME=A\nPROVIDER=openai-compatible\nBASE_URL=https://x/v1\nMODEL=m.gguf\n",
        "api-key-in-conf": GOOD + "API_KEY=sk-live-123\n",
        "api-key-env-malformed": GOOD + "API_KEY_ENV=sk-live 123\n",
        "base-url-bad-scheme": "[bench-a]\nNAME=A\nPROVIDER=openai-compatible\nBASE_URL=htp://x\n",
        "cost-without-prices": GOOD + "MAX_COST_USD=5\n",
        "unknown-provider": GOOD + "PROVIDER=ollama\n",
        "empty-file": "",
        "only-default": "[DEFAULT]\nGPUS=none\n",
        "max-tokens-huge": GOOD + "MAX_TOKENS=1e99\n",
        "model-escapes": GOOD.replace("MODEL=tiny.gguf", "MODEL=../../etc/passwd"),
    }
    probes = [Probe(f"conf:{name}", lambda tmp: ["env", "bench-x", "--config", str(tmp / "models.conf"),
                                                 "--out", str(tmp / "out.env")],
                    setup=_write("models.conf", text), outputs=("out.env",), quick=name in (
                        "health-inf", "api-key-in-conf", "project-collision", "extra-args-empty-word"))
              for name, text in bad.items()]
    probes += [
        Probe("conf:binary", lambda tmp: ["profiles", "--config", str(tmp / "models.conf")],
              setup=_write("models.conf", bytes(range(256)) * 4), quick=True),
        Probe("conf:directory", lambda tmp: ["profiles", "--config", str(tmp)]),
        Probe("conf:dev-zero", lambda tmp: ["profiles", "--config", "/dev/zero"], quick=True, timeout_s=20),
        Probe("conf:fifo", lambda tmp: ["profiles", "--config", str(tmp / "fifo")],
              setup=lambda tmp: os.mkfifo(tmp / "fifo"), timeout_s=20),
        Probe("conf:missing", lambda tmp: ["profiles", "--config", str(tmp / "nope.conf")]),
        Probe("conf:bom-is-fine", lambda tmp: ["profiles", "--config", str(tmp / "models.conf")],
              setup=_write("models.conf", b"\xef\xbb\xbf" + GOOD.encode()), expect_error=False),
        Probe("conf:inline-comment-is-fine", lambda tmp: ["env", "bench-x", "--config", str(tmp / "models.conf"),
                                                          "--out", str(tmp / "out.env")],
              setup=_write("models.conf", GOOD.replace("PORT=18500", "PORT=18500  # main")), expect_error=False,
              check=lambda tmp, done: None if "18500" in (tmp / "out.env").read_text() else "port not in .env"),
        Probe("conf:unknown-profile-of-many", lambda tmp: ["env", "nope", "--config", str(tmp / "models.conf")],
              setup=_write("models.conf", "".join(
                  f"[p{i}]\nNAME=p\nMODEL=tiny.gguf\nIMAGE=i\nCTX_SIZE=1\nPORT={1000 + i}\n" for i in range(5000))),
              check=lambda tmp, done: "error line over 1000 characters" if len(done.stderr) > 1000 else None),
    ]
    return probes


NUMERIC = {
    "throughput": ("--runs", "--warmup", "--max-tokens", "--prompt-runs", "--slots", "--timeout-s", "--load-time-s"),
    "verify": ("--timeout-s",),
    "packs run": ("--max-tokens", "--timeout-s", "--parallel", "--retries", "--thinking-budget", "--temperature",
                  "--top-p", "--min-p", "--top-k"),
    "codegen": ("--limit", "--max-tokens", "--parallel", "--timeout-s", "--retries"),
    "evaluate": ("--eval-parallel", "--min-time-limit", "--sandbox-wall-s"),
    "diff": ("--alpha",),
    "baseline capture": ("--repeat", "--min-runs"),
    "all-bench": ("--evalplus-limit", "--throughput-runs"),
}
BAD_NUMBERS = ("-1", "nan", "inf", "abc", "1e999", "0")


def flag_probes() -> list[Probe]:
    """Every numeric flag of every verb with values out of its range (the parser must refuse)."""
    rest = {"throughput": ["http://127.0.0.1:9"], "verify": ["http://127.0.0.1:9"],
            "packs run": ["--base-url", "http://127.0.0.1:9"], "codegen": ["--base-url", "http://127.0.0.1:9",
                                                                          "--out", "OUT"],
            "evaluate": ["--samples", "S"], "diff": ["a.json", "b.json"],
            "baseline capture": ["bench-x", "--config", "NOCONF"], "all-bench": ["--config", "NOCONF"]}
    allowed_zero = {"--warmup", "--retries", "--thinking-budget", "--temperature", "--top-p", "--min-p", "--top-k",
                    "--load-time-s", "--throughput-runs"}
    probes = []
    for verb, flags in NUMERIC.items():
        for flag in flags:
            for value in BAD_NUMBERS:
                if value == "0" and flag in allowed_zero:
                    continue
                probes.append(Probe(f"flag:{verb} {flag} {value}",
                                    lambda tmp, verb=verb, flag=flag, value=value: [
                                        *verb.split(), *[str(tmp / "out") if a == "OUT" else
                                                         str(tmp / "missing.conf") if a == "NOCONF" else a
                                                         for a in rest[verb]], f"{flag}={value}"],
                                    # refused by the parser, naming the flag: nothing real may ever start
                                    check=lambda tmp, done, flag=flag: None if flag in done.stderr else
                                    f"{flag} not named in the refusal",
                                    quick=(value == "nan" and flag in ("--timeout-s", "--alpha")) or
                                          (value == "0" and flag in ("--runs", "--limit"))))
    return probes


def file_probes() -> list[Probe]:
    """Pack files and result files that are not what they claim."""
    packs = {
        "binary": bytes(range(256)) * 8,
        "deep": (META + "\n" + "[" * 20000 + "]" * 20000 + "\n").encode(),
        "infinite-budget": (META + "\n" + SCENARIO[:-1] + ', "max_seconds_override": 1e999}\n').encode(),
        "meta-only": (META + "\n").encode(),
        "no-meta": (SCENARIO + "\n").encode(),
        "unknown-verifier": (META + "\n" + SCENARIO.replace("answer_match", "vibes") + "\n").encode(),
        "duplicate-ids": (META + "\n" + SCENARIO + "\n" + SCENARIO + "\n").encode(),
        "list-line": (META + "\n[1, 2]\n").encode(),
    }
    probes = [Probe(f"pack-file:{name}", lambda tmp: ["packs", "run", "--base-url", "http://127.0.0.1:9",
                                                      "--pack-file", str(tmp / "pack.jsonl"),
                                                      "--save-json", str(tmp / "r.json")],
                    setup=_write("pack.jsonl", data), outputs=("r.json",), quick=name in ("binary", "deep"))
              for name, data in packs.items()]
    results = {
        "not-json": b"not json",
        "binary": bytes(range(256)),
        "list": b"[]",
        "deep": b"[" * 20000 + b"]" * 20000,
        "schema-99": json.dumps({"kind": "packs", "schema_version": 99}).encode(),
        "empty": b"",
    }
    for name, data in results.items():
        for verb in (["inspect"], ["rescore"], ["diff"]):
            def argv(tmp: Path, verb: list[str] = verb) -> list[str]:
                files = [str(tmp / "r.json")] * (2 if verb == ["diff"] else 1)
                return [*verb, *files]

            probes.append(Probe(f"result-file:{verb[0]} {name}", argv, setup=_write("r.json", data),
                                quick=name == "deep" and verb == ["inspect"]))
    return probes


def url_probes() -> list[Probe]:
    """Targets that are not URLs or profiles."""
    targets = ["htp://127.0.0.1:8080", "127.0.0.1:8080", "localhost:8080/v1", "http://", "https://:80",
               "http://127.0.0.1:notaport"]
    probes = []
    for target in targets:
        probes.append(Probe(f"url:verify {target}", lambda tmp, t=target: ["verify", t, "--config",
                                                                          str(tmp / "models.conf")],
                            setup=_write("models.conf", GOOD), quick=target.startswith("htp")))
        probes.append(Probe(f"url:packs {target}", lambda tmp, t=target: ["packs", "run", "--base-url", t,
                                                                         "--save-json", str(tmp / "r.json")],
                            outputs=("r.json",)))
    return probes


def endpoint_probes(url: str, mini: Path) -> list[Probe]:
    """A live scripted endpoint that answers badly (set per probe through its path suffix)."""
    probes = []
    for shape in ("html", "list", "choices-string", "number-content", "truncated", "cut-stream"):
        base = f"{url}/{shape}"
        probes.append(Probe(f"endpoint:throughput {shape}", lambda tmp, b=base: [
            "throughput", b, "--runs", "1", "--warmup", "0", "--prompt-lengths", "20", "--prompt-runs", "1",
            "--concurrency", "1", "--timeout-s", "5", "--save-json", str(tmp / "t.json")],
            outputs=("t.json",), quick=shape == "cut-stream"))
        probes.append(Probe(f"endpoint:verify {shape}", lambda tmp, b=base: ["verify", b, "--timeout-s", "5"],
                            quick=shape == "html"))
        if shape == "cut-stream":
            continue  # packs and codegen do not stream: a cut stream is no fault for them
        probes.append(Probe(f"endpoint:packs {shape}", lambda tmp, b=base: [
            "packs", "run", "--base-url", b, "--scenario", "reasonmath-15/shop-change", "--timeout-s", "5",
            "--retries", "0", "--save-json", str(tmp / "p.json"), "--no-progress"],
            expect_error=False, check=_no_quality_numbers, quick=shape == "truncated"))
        if mini.is_file():
            probes.append(Probe(f"endpoint:codegen {shape}", lambda tmp, b=base: [
                "codegen", "--base-url", b, "--dataset-path", str(mini), "--limit", "1", "--retries", "0",
                "--timeout-s", "5", "--out", str(tmp / "cg")], quick=shape == "list"))
    # The device is a null device made in the probe's own folder: a harness that failed to refuse
    # it replaces a scratch node, never the machine's /dev/null.
    for verb, argv in {"verify": ["verify", "DEV", "--save-json", "NULL"],
                       "throughput": ["throughput", "DEV", "--runs", "1", "--save-json", "NULL"],
                       "packs": ["packs", "run", "--base-url", "DEV", "--save-json", "NULL"]}.items():
        probes.append(Probe(f"output:{verb} device", lambda tmp, a=argv: [
            url + "/fine" if x == "DEV" else str(tmp / "null") if x == "NULL" else x for x in a],
            setup=_null_device, quick=verb == "packs",
            check=lambda tmp, done: None if stat.S_ISCHR(os.lstat(tmp / "null").st_mode) else "device replaced"))
        probes.append(Probe(f"output:{verb} directory", lambda tmp, a=argv: [
            url + "/fine" if x == "DEV" else str(tmp) if x == "NULL" else x for x in a]))
    return probes


def _null_device(tmp: Path) -> None:
    os.mknod(tmp / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))


def _no_quality_numbers(tmp: Path, done: subprocess.CompletedProcess) -> str | None:
    lines = [line for line in done.stdout.splitlines() if line.startswith("Quality:")]
    return f"printed {lines[0]!r} for a run the endpoint broke" if lines and "not reported" not in lines[0] else None


BAD_BODIES = {"html": b"<html>502</html>", "list": b"[]", "choices-string": b'{"choices": "nope"}',
              "number-content": b'{"choices": [{"message": {"content": 12345}, "finish_reason": "stop"}]}',
              "truncated": b'{"choices": [{"message": {"content": "Par'}
SHAPES = (*BAD_BODIES, "cut-stream", "fine")


def _answer_for(shape: str) -> Raw | Reply:
    if shape in BAD_BODIES:
        return Raw(200, BAD_BODIES[shape], {"Content-Type": "application/json"})
    if shape == "cut-stream":
        return Reply(content="one two three four five six seven eight nine ten", stream_end=False,
                     finish_reason=None)
    return Reply(content="Change: 10.95\nANSWER: 10.95")


class _ShapedServer(ScriptedModelServer):
    """The scripted server reached under /<shape>/...: the first path segment picks how chat answers."""

    def _answer(self, request: Request):
        parts = request.path.split("/", 2)
        if len(parts) > 2 and parts[1] in SHAPES:
            path = "/" + parts[2]
            wire = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}.get(path)
            if wire:
                return _answer_for(parts[1])
            request = Request(request.method, path, request.headers, request.json, None)
        return super()._answer(request)


def run_probe(probe: Probe) -> tuple[Probe, str]:
    """Run one probe in a scratch folder; the verdict is "" (fine) or what went wrong, by class."""
    with tempfile.TemporaryDirectory(prefix="sweep-") as scratch:
        tmp = Path(scratch)
        probe.setup(tmp)
        argv = [sys.executable, "-m", "harness", *probe.argv(tmp)]
        try:
            done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=probe.timeout_s,
                                  stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except subprocess.TimeoutExpired:
            return probe, "hang"
        output = done.stdout + done.stderr
        if "Traceback (most recent call last)" in output:
            return probe, "traceback"
        partial = [str(p) for p in tmp.rglob("*.partial")]
        leftovers = [name for name in probe.outputs if (tmp / name).exists()] if done.returncode else []
        if partial or leftovers:
            return probe, "half-written"
        if probe.expect_error and done.returncode == 0:
            return probe, "silent-wrong"
        if not probe.expect_error and done.returncode != 0:
            return probe, "silent-wrong"
        problem = probe.check(tmp, done) if done.returncode == 0 or probe.expect_error else None
        if problem:
            return probe, "silent-wrong"
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        if probe.expect_error and done.returncode == 2 and not done.stdout.strip() and "usage:" not in done.stderr and (
                len(errors) != 1 or not done.stderr.rstrip().endswith(errors[0])):
            return probe, "silent-wrong"  # a refusal is one `error:` line, the last thing said
        return probe, ""


def sweep(quick: bool, workers: int = 2) -> Tally:
    mini = REPO_ROOT.parent / "shared" / "data" / "humanevalplus" / "HumanEvalPlus-Mini-v0.1.10.jsonl"
    tally = Tally()
    with _ShapedServer() as server:
        probes = conf_probes() + flag_probes() + file_probes() + url_probes() + endpoint_probes(server.base_url, mini)
        if quick:
            probes = [p for p in probes if p.quick]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for probe, verdict in pool.map(run_probe, probes):
                tally.probes += 1
                bucket = {"traceback": tally.tracebacks, "hang": tally.hangs, "half-written": tally.half_written,
                          "silent-wrong": tally.silent_wrong}.get(verdict)
                if bucket is not None:
                    bucket.append(probe.name)
    print(f"hostile sweep: {tally.probes} probes in {time.monotonic() - started:.0f}s")
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a sample from every class")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tally = sweep(args.quick, args.workers)
    for label, names in (("tracebacks", tally.tracebacks), ("hangs", tally.hangs),
                         ("half-written outputs", tally.half_written), ("silent wrong results", tally.silent_wrong)):
        print(f"  {label:<22} {len(names)}" + (f": {', '.join(names)}" if names else ""))
    bad = len(tally.tracebacks) + len(tally.hangs) + len(tally.half_written) + len(tally.silent_wrong)
    print(f"probes {tally.probes}, tracebacks {len(tally.tracebacks)}, hangs {len(tally.hangs)}, half-written "
          f"{len(tally.half_written)}, silent wrong {len(tally.silent_wrong)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
