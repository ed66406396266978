"""Pack loading: our folder format, BenchLocal JSONL, and one-line errors naming file, line, field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.errors import PackError
from harness.packs import loader

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "tests" / "data" / "benchlocal_sample.jsonl"


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    target = tmp_path / "reasonmath-15"
    shutil.copytree(REPO_ROOT / "packs" / "reasonmath-15", target)
    return target


def _edit_line(path: Path, number: int, change) -> None:
    lines = path.read_text().splitlines()
    row = json.loads(lines[number - 1])
    change(row)
    lines[number - 1] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("messages"), r"scenarios\.jsonl:3: field messages: Field required"),
    (lambda r: r["verifier"].update(type="llm_judge"),
     r"scenarios\.jsonl:3: field verifier\.type: unknown verifier 'llm_judge'"),
    (lambda r: r["verifier"].update(answr="1"),
     r"scenarios\.jsonl:3: scenario percent-chain: field verifier\.answr: Extra inputs"),
    (lambda r: r.update(id="shop-change"),
     r"scenarios\.jsonl:3: field id: duplicate scenario id 'shop-change' \(first on line 1\)"),
    (lambda r: r.update(max_turns=12), r"scenarios\.jsonl:3: field max_turns: Input should be less than or equal to 8"),
])
def test_malformed_scenario_names_file_line_and_field(pack_dir, change, message):
    _edit_line(pack_dir / "scenarios.jsonl", 3, change)
    with pytest.raises(PackError, match=message):
        loader.load_pack_dir(pack_dir)


def test_bad_json_and_bad_meta(pack_dir):
    path = pack_dir / "scenarios.jsonl"
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(PackError, match=r"scenarios\.jsonl:16: not valid JSON"):
        loader.load_pack_dir(pack_dir)
    (pack_dir / "pack.json").write_text(json.dumps({"id": "reasonmath-15", "version": "1", "default_max_seconds": -1}))
    with pytest.raises(PackError, match=r"pack\.json: field default_max_seconds: Input should be greater than 0"):
        loader.load_pack_dir(pack_dir)


def test_cli_reports_a_malformed_pack_in_one_line(pack_dir, capsys):
    _edit_line(pack_dir / "scenarios.jsonl", 2, lambda r: r["verifier"].pop("type"))
    code = cli.main(["packs", "list", "--packs-dir", str(pack_dir.parent)])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_ERROR and len(err.splitlines()) == 1
    assert "scenarios.jsonl:2: field verifier.type: Field required" in err


def test_benchlocal_import_keeps_meta_and_extras(tmp_path):
    pack = loader.load_pack(SAMPLE)
    assert (pack.meta.id, pack.meta.format, pack.meta.timeout_reference_tps) == ("bl-sample", "benchlocal", 20)
    assert pack.meta.sampling_defaults.max_tokens == 256
    first = pack.scenarios[0]
    assert first.extras == {"difficulty": "easy"}
    assert pack.scenarios[2].expected == {"name": "Ola", "age": 31}
    broken = tmp_path / "b.jsonl"
    broken.write_text(SAMPLE.read_text().split("\n", 1)[1])
    with pytest.raises(PackError, match=r"b\.jsonl:1: field __meta__"):
        loader.load_pack(broken)


def test_selection_by_mode_pack_and_scenario():
    packs = loader.discover_packs(REPO_ROOT / "packs")
    assert [p.meta.id for p in loader.select(packs, mode="quick")] == ["instructfollow-15", "toolcall-15"]
    assert len(loader.select(packs, mode="medium")) == 5
    [one] = loader.select(packs, scenario_refs=["toolcall-15/chain-refund"])
    assert [s.id for s in one.scenarios] == ["chain-refund"]
    with pytest.raises(PackError, match="has no scenario 'nope'"):
        loader.select(packs, scenario_refs=["toolcall-15/nope"])
