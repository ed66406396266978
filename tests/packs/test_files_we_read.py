"""Files the harness reads that are not what they claim: each is one line naming the file, never a
traceback, and a damaged result file is never trusted as it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import PackError
from harness.packs import loader
from harness.packs.runner import RunOptions, read_result, run_packs, write_result
from tests.doubles.scripted_server import ScriptedModel

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK = loader.discover_packs(REPO_ROOT / "packs")["reasonmath-15"]
META = json.dumps({"__meta__": True, "pack_id": "x", "version": "1"})


def _harness(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def result_file(tmp_path_factory) -> Path:
    with ScriptedModel(PACK.scenarios) as model:
        result = run_packs([PACK], RunOptions(base_url=model.base_url, timeout_override_s=10))
    return write_result(result, tmp_path_factory.mktemp("result") / "r.json")


@pytest.mark.parametrize("content, expected", [
    (bytes(range(256)) * 8, "not UTF-8 text"),
    ((META + "\n" + "[" * 20000 + "]" * 20000 + "\n").encode(), ":2: not valid JSON (JSON nested too deeply)"),
    ((META + '\n{"id": "a", "messages": [{"role": "user", "content": "q"}], "verifier": {"type": "answer_match", '
      '"answer": "x"}, "max_seconds_override": 1e999}\n').encode(), ":2: field max_seconds_override"),
])
def test_a_broken_pack_file_is_one_line(tmp_path, content, expected):
    path = tmp_path / "pack.jsonl"
    path.write_bytes(content)
    with pytest.raises(PackError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        loader.load_pack(path)
    done = _harness("packs", "run", "--base-url", "http://127.0.0.1:9", "--pack-file", str(path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("damage, expected", [
    (lambda d: d.update(schema_version=99), "schema_version"),
    (lambda d: d["packs"][0]["scenarios"][0].update(score=float("nan")), "finite number"),
    (lambda d: d["packs"][0]["scenarios"][0].update(score=1e9), "less than or equal to 100"),
    (lambda d: d["packs"][0].update(passed=6, total=3), "total says 3 but its scenarios count 15"),
])
def test_a_damaged_result_file_is_refused(result_file, tmp_path, damage, expected):
    data = json.loads(result_file.read_text())
    damage(data)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PackError, match=expected):
        read_result(path)
    done = _harness("inspect", str(path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "For further information" not in done.stderr


def test_inspect_says_when_a_scenario_is_not_there(result_file):
    done = _harness("inspect", str(result_file), "--scenario", "nope/nope")
    assert done.returncode == 2 and "no scenario 'nope/nope'" in done.stderr and done.stdout == ""
    found = _harness("inspect", str(result_file), "--scenario", f"reasonmath-15/{PACK.scenarios[0].id}")
    assert found.returncode == 0 and PACK.scenarios[0].id in found.stdout


def test_a_reader_that_leaves_early_is_no_error(result_file, tmp_path):
    """`inspect … | head -1`: the pipe closes early; no BrokenPipeError traceback, no noise."""
    data = json.loads(result_file.read_text())
    for scenario in data["packs"][0]["scenarios"]:
        scenario["reply"]["content"] = "a long reply " * 20_000  # far more than a pipe buffer holds
    big = tmp_path / "big.json"
    big.write_text(json.dumps(data))
    done = subprocess.run(f"{sys.executable} -m harness inspect {big} --scenario shop-change --full | head -1",
                          shell=True, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.count("\n") == 1
    assert done.stderr == "", done.stderr
