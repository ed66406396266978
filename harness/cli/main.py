"""Command line: `python -m harness <verb>`. The parser and the only place that turns errors
into exit codes.

Every HarnessError (and an unreachable Docker engine) becomes one line on stderr and exit 2;
tracebacks only with --debug. The verbs live beside this module, one module per concern.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from python_on_whales import DockerException

from harness.cli import compare as compare_cli
from harness.cli import evalplus as evalplus_cli
from harness.cli import packs as packs_cli
from harness.cli import run, serve
from harness.cli import soak as soak_cli
from harness.cli import stress as stress_cli
from harness.cli import sweep as sweep_cli
from harness.cli import throughput as throughput_cli
from harness.cli import verify_full as verify_full_cli
from harness.errors import HarnessError, Interrupted

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=Path("models.conf"),
                        help="profiles file (default ./models.conf)")
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
    verify_full_cli.register(verbs, common)
    stress_cli.register(verbs, common)
    sweep_cli.register(verbs, common)
    soak_cli.register(verbs, common)
    packs_cli.register(verbs, common)
    evalplus_cli.register(verbs, common)
    return parser


def _leave_now(code: int) -> None:
    """Exit at once after Ctrl-C: requests still in flight are abandoned, not waited for (their
    worker threads would hold the process up to a scenario's budget). Everything finished is
    already on disk: results are written atomically and journals fsync every line."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    containers = sys.modules.get("harness.containers")  # only when this run started sandboxes
    if containers is not None:
        containers.remove_leftovers()  # os._exit skips atexit
    os._exit(code)


def _interrupt_on_sigterm() -> Any:
    """Make SIGTERM raise KeyboardInterrupt in the main thread; returns the handler it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    # Imported here so that this boundary is the only part of the module that knows about step records.
    import contextlib
    import io
    import os

    from harness.overnight.outcome import STEP_OUTCOME_ENV, write_step_outcome

    outcome_path = os.environ.get(STEP_OUTCOME_ENV)  # set by all-bench for each step it runs

    def record(exit_code: int, error: str = "", error_type: str = "") -> None:
        if not outcome_path:
            return
        try:
            write_step_outcome(Path(outcome_path), exit_code, error, error_type)
        except HarnessError as exc:  # the runner then says "no outcome record"; the step's own result stands
            print(f"warning: {exc}", file=sys.stderr)

    parser_stderr = io.StringIO()  # argparse prints its usage error there; kept to record it
    try:
        with contextlib.redirect_stderr(parser_stderr):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            said = parser_stderr.getvalue().strip().splitlines()
            record(exc.code if isinstance(exc.code, int) else EXIT_ERROR,
                   said[-1] if said else "invalid command line", "UsageError")
        raise
    finally:
        sys.stderr.write(parser_stderr.getvalue())
    # SIGTERM (`timeout`, a service manager, `kill`) ends the verb the way Ctrl-C does: finished
    # work kept, sandboxes removed. Restored afterwards for callers that run main() in-process.
    previous_term = _interrupt_on_sigterm()
    try:
        exit_code = args.func(args)
    except Interrupted as exc:
        record(EXIT_INTERRUPTED, str(exc), type(exc).__name__)
        print(f"error: {exc}", file=sys.stderr)
        _leave_now(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # `inspect … | head -1`: the reader left; nothing more to say, and nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except HarnessError as exc:
        record(EXIT_ERROR, str(exc), type(exc).__name__)
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
    except DockerException as exc:
        detail = (exc.stderr or str(exc)).strip().splitlines()
        message = (f"docker failed: {detail[-1] if detail else exc} "
                   "(is the engine running? `make provision` sets one up)")
        record(EXIT_ERROR, message, type(exc).__name__)
        if args.debug:
            raise
        print(f"error: {message}", file=sys.stderr)
    except KeyboardInterrupt:
        record(EXIT_INTERRUPTED, "interrupted", "KeyboardInterrupt")
        print("error: interrupted; finished work is kept (results are written atomically, journals line by "
              "line): run the same command again to resume", file=sys.stderr)
        _leave_now(EXIT_INTERRUPTED)
    else:
        record(int(exit_code or 0))
        return exit_code
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return EXIT_ERROR
