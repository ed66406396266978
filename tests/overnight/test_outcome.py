"""Steps hand the runner data: the CLI boundary writes the outcome record, all-bench reads why a
step failed from it (and from verify.json), never from the step's log. No Docker: the env step
is a real `python -m harness env` subprocess, the others are records written by hand."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.cli.main import main
from harness.endpoint.verify import Check, VerifyResult
from harness.errors import ProfileError
from harness.overnight import allbench
from harness.overnight.manifest import ManifestStore, StepStatus
from harness.overnight.outcome import STEP_OUTCOME_ENV, StepOutcome, one_line, read_step_outcome, write_step_outcome
from harness.serving import compose as serving
from harness.serving.profiles import get_profile
from tests.conftest import COMPOSE_DIR, GOOD_PROFILE


@pytest.fixture
def outcome(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "step.outcome.json"
    monkeypatch.setenv(STEP_OUTCOME_ENV, str(path))
    return path


def test_a_verb_that_returns_records_its_exit_code(write_conf, tmp_path, outcome):
    conf = write_conf(GOOD_PROFILE)
    assert main(["env", "bench-tiny", "--config", str(conf), "--out", str(tmp_path / "x.env")]) == 0
    assert json.loads(outcome.read_text()) == {"exit_code": 0}


def test_a_harness_error_records_the_one_line_message_and_its_type(write_conf, outcome, capsys):
    conf = write_conf(GOOD_PROFILE.replace("CTX_SIZE=1024", "CTX_SIZE=big"))
    assert main(["env", "bench-tiny", "--config", str(conf)]) == 2
    printed = capsys.readouterr().err.strip()
    assert json.loads(outcome.read_text()) == {"exit_code": 2, "error": printed.removeprefix("error: "),
                                               "error_type": "ProfileError"}


def test_a_usage_error_records_argparses_message(outcome, capsys):
    with pytest.raises(SystemExit):
        main(["env", "bench-tiny", "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err  # still printed
    record = read_step_outcome(outcome)
    assert record.exit_code == 2 and record.error_type == "UsageError"
    assert record.error.endswith("error: unrecognized arguments: --no-such-flag")


def test_help_writes_no_failure(outcome, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0 and not outcome.exists()


def test_without_the_variable_nothing_is_written(write_conf, tmp_path, monkeypatch):
    monkeypatch.delenv(STEP_OUTCOME_ENV, raising=False)
    conf = write_conf(GOOD_PROFILE)
    assert main(["env", "bench-tiny", "--config", str(conf), "--out", str(tmp_path / "x.env")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "models.conf", "x.env"]


def test_one_line_keeps_the_first_line_and_says_how_much_more_the_log_has():
    message = "server container exited with code 1 (exited) while loading; last 2 log lines:\n  | a\n  | b"
    assert one_line(message) == ("server container exited with code 1 (exited) while loading; last 2 log lines "
                                 "(+2 lines in the log)")
    assert one_line("plain") == "plain"


def test_a_missing_or_torn_record_reads_as_none(tmp_path):
    assert read_step_outcome(tmp_path / "gone.json") is None
    (tmp_path / "torn.json").write_text('{"exit_code": ')
    assert read_step_outcome(tmp_path / "torn.json") is None
    write_step_outcome(tmp_path / "ok.json", 3)
    assert read_step_outcome(tmp_path / "ok.json") == StepOutcome(exit_code=3)


# --- all-bench: StepRecord.detail comes from the records ------------------------------------------------

def test_failure_detail_from_the_outcome_record(tmp_path):
    record = StepOutcome(exit_code=2, error="port 18080 on 127.0.0.1 is already in use", error_type="ServingError")
    assert allbench.failure_detail("up", 2, record, tmp_path, "p/up.log") == \
        "exit 2: port 18080 on 127.0.0.1 is already in use"


def test_failure_detail_without_a_record_points_at_the_log(tmp_path):
    assert allbench.failure_detail("packs", -11, None, tmp_path, "p/packs.log") == \
        "exit -11 (no outcome record; see p/packs.log)"
    assert allbench.failure_detail("evaluate", 1, StepOutcome(exit_code=1), tmp_path, "p/evaluate.log") == \
        "exit 1 (no error message; see p/evaluate.log)"


def test_a_failed_verify_says_which_server_checks_failed_from_verify_json(tmp_path):
    checks = [Check.make("/health answers 200", "server", True, "HTTP 200"),
              Check.make("server slots applied", "server", False, "1 slots, PARALLEL 2"),
              Check.make("model calls a tool (tool_calls)", "capability", False, "no tool_calls")]
    (tmp_path / "verify.json").write_text(VerifyResult(target="[p] at http://x", checks=checks).model_dump_json())
    detail = allbench.failure_detail("verify", 1, StepOutcome(exit_code=1), tmp_path, "p/verify.log")
    assert detail == "exit 1: 1 of 2 server checks failed: server slots applied (1 slots, PARALLEL 2)"


def test_the_verify_step_saves_its_checks_as_json(write_conf, tmp_path):
    conf = write_conf(GOOD_PROFILE)
    ctx = _context(conf, tmp_path)
    [argv] = allbench.step_argv("verify", ctx)
    assert argv[argv.index("--save-json") + 1] == str(ctx.out_dir / "verify.json")


def _context(conf: Path, tmp_path: Path) -> allbench._ProfileContext:
    profile = get_profile(conf, "bench-tiny")
    out = tmp_path / "run" / "bench-tiny"
    out.mkdir(parents=True)
    return allbench._ProfileContext(profile, conf, out, serving.deployment_for(profile, COMPOSE_DIR),
                                    allbench.BenchOptions())


def test_a_real_failing_step_gets_its_detail_from_the_outcome_not_the_log(write_conf, tmp_path):
    """The env step as a subprocess: the profile breaks after the run loaded it; the detail is the error."""
    conf = write_conf(GOOD_PROFILE)
    ctx = _context(conf, tmp_path)
    store = ManifestStore(tmp_path / "run" / "manifest.json",
                          allbench.new_manifest("run", conf, ["bench-tiny"], allbench.BenchOptions()))
    record = store.manifest.profile("bench-tiny")
    (ctx.out_dir / "env.outcome.json").write_text('{"exit_code": 0}')  # stale, from an earlier attempt
    conf.write_text(GOOD_PROFILE.replace("PORT=18500", "PORT=http"))
    with pytest.raises(ProfileError) as expected:
        get_profile(conf, "bench-tiny")
    assert allbench._run_step(store, record, record.step("env"), ctx) is False
    step = record.step("env")
    assert step.status == StepStatus.failed and step.exit_code == 2
    assert step.detail == f"exit 2: {expected.value}"
    assert read_step_outcome(ctx.out_dir / "env.outcome.json").error_type == "ProfileError"
    assert "error:" in (ctx.out_dir / "env.log").read_text()  # the log still has it, for people


def test_server_evidence_comes_from_the_saved_server_log(tmp_path, monkeypatch):
    class _Container:
        id = "c1"

    class _Engine:  # the profile's rig, as far as this test needs it
        container = SimpleNamespace(logs=lambda cid, tail: "loading\nerror: invalid magic\n\n")

    deployment = SimpleNamespace(profile=SimpleNamespace(docker_context=None))
    monkeypatch.setattr(serving, "server_container", lambda deployment: _Container())
    monkeypatch.setattr(allbench.rigs, "client_for", lambda profile: _Engine())
    path = tmp_path / "server.log"
    assert allbench._save_server_log(deployment, path) == "; server said: error: invalid magic"
    assert path.read_text() == "loading\nerror: invalid magic\n\n"
    monkeypatch.setattr(serving, "server_container", lambda deployment: None)
    assert allbench._save_server_log(deployment, tmp_path / "none.log") == ""  # no container: no evidence
