"""Command line: `python -m harness <verb>`. The parser and the only place that turns errors
into exit codes.

Every HarnessError (and an unreachable Docker engine) becomes one line on stderr and exit 2;
tracebacks only with --debug. The verbs live beside this module, one module per concern.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from python_on_whales import DockerException

from harness.cli import compare as compare_cli
from harness.cli import evalplus as evalplus_cli
from harness.cli import packs as packs_cli
from harness.cli import run, serve
from harness.cli import throughput as throughput_cli
from harness.errors import HarnessError

EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=Path("models.conf"), help="profiles file (default ./models.conf)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = argparse.ArgumentParser(prog="python -m harness", parents=[common],
                                     description="benchwright: is this model/quant/server config good and fast?")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, func, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    serve.register(verb)
    run.register(verb)
    compare_cli.register(verbs, common)
    throughput_cli.register(verbs, common)
    packs_cli.register(verbs, common)
    evalplus_cli.register(verbs, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
    except DockerException as exc:
        if args.debug:
            raise
        detail = (exc.stderr or str(exc)).strip().splitlines()
        print(f"error: docker failed: {detail[-1] if detail else exc} "
              "(is the engine running? `make provision` sets one up)", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return EXIT_ERROR
