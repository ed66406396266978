"""Loading packs: our folder format and BenchLocal-format JSONL files.

Our format: ``packs/<id>/pack.json`` (PackMeta) + ``packs/<id>/scenarios.jsonl`` (one Scenario
per line). BenchLocal format: one ``.jsonl`` file whose first line is a ``{"__meta__": true,
"pack_id": ...}`` object and whose other lines are scenarios, imported unmodified by
``harness.packs.benchlocal`` (fields we do not act on are kept and listed, never refused).
Any wrong value is one PackError naming file, line and field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from harness.errors import PackError, describe_validation_error
from harness.files import parse_json, read_text
from harness.packs import benchlocal
from harness.packs.schema import Pack, PackMeta, Scenario
from harness.packs.verifiers import VERIFIERS
from harness.packs.world import WorldSpec

PACK_META_FILE = "pack.json"
SCENARIOS_FILE = "scenarios.jsonl"
_SCENARIO_KEYS = set(Scenario.model_fields) - {"extras"}


def _validate(model: type[BaseModel], data: Any, place: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PackError(f"{place}: field {describe_validation_error(exc, '(root)')}") from None


def _check_verifier(scenario: Scenario, place: str) -> None:
    kind = scenario.verifier.type
    if kind not in VERIFIERS:
        raise PackError(f"{place}: field verifier.type: unknown verifier {kind!r} (known: {', '.join(VERIFIERS)})")
    try:
        VERIFIERS[kind].Spec.model_validate(scenario.verifier.model_dump())
    except ValidationError as exc:
        raise PackError(f"{place}: scenario {scenario.id}: field verifier.{describe_validation_error(exc, '(root)')}"
                        ) from None


def read_json_lines(path: Path, what: str = "a pack file") -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file; one PackError line otherwise."""
    try:
        text = read_text(path)
    except OSError as exc:
        raise PackError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise PackError(f"{path}: {exc}; {what} is JSON lines") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = parse_json(line)
        except ValueError as exc:
            raise PackError(f"{path}:{number}: not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise PackError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
        rows.append((number, value))
    return rows


def _scenarios(path: Path, rows: list[tuple[int, dict]]) -> list[Scenario]:
    scenarios: list[Scenario] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        place = f"{path}:{number}"
        scenario = _validate(Scenario, row, place)
        if scenario.id in seen:
            raise PackError(f"{place}: field id: duplicate scenario id {scenario.id!r} "
                            f"(first on line {seen[scenario.id]})")
        seen[scenario.id] = number
        _check_verifier(scenario, place)
        scenarios.append(scenario)
    if not scenarios:
        raise PackError(f"{path}: no scenarios")
    return scenarios


def _check_world(meta: PackMeta, scenarios: list[Scenario], scenarios_path: Path) -> None:
    """An agent pack on mock services: every scenario brings its initial state, judged by its end state."""
    if meta.world is not None and meta.sandbox is not None:
        raise PackError(f"{scenarios_path.parent / PACK_META_FILE}: fields world and sandbox exclude each other")
    for scenario in scenarios:
        place = f"{scenarios_path}: scenario {scenario.id}"
        if (meta.world is None) != (scenario.world is None):
            raise PackError(f"{place}: field world: " + ("required: the pack acts on mock services" if meta.world
                                                         else "only world packs (pack.json world) take it"))
        if scenario.world is None:
            continue
        if scenario.verifier.type not in ("world", "rubric"):
            raise PackError(f"{place}: field verifier.type: a world scenario is judged by the world verifier")
        try:
            WorldSpec.model_validate(scenario.world)
        except ValidationError as exc:
            raise PackError(f"{place}: field world.{describe_validation_error(exc, '(root)')}") from None


def _check_sandbox(directory: Path, meta: PackMeta, scenarios: list[Scenario], scenarios_path: Path) -> None:
    """A sandboxed pack's scenarios all say how their workspace is made, and its folders exist."""
    _check_world(meta, scenarios, scenarios_path)
    for scenario in scenarios:
        place = f"{scenarios_path}: scenario {scenario.id}"
        if (meta.sandbox is None) != (scenario.sandbox is None):
            raise PackError(f"{place}: field sandbox: " + ("required: the pack is sandboxed" if meta.sandbox
                                                           else "only sandboxed packs (pack.json sandbox) take it"))
        if meta.sandbox is None or scenario.sandbox is None:
            continue
        if scenario.verifier.type not in ("sandbox", "rubric"):
            raise PackError(f"{place}: field verifier.type: a sandboxed scenario is judged by the sandbox verifier "
                            "(or a rubric)")
        for kind, name in (("fixtures", scenario.sandbox.fixture), ("hidden", scenario.sandbox.hidden)):
            if name and not (directory / kind / name).is_dir():
                raise PackError(f"{place}: field sandbox.{'fixture' if kind == 'fixtures' else 'hidden'}: "
                                f"folder {directory / kind / name} not found")
        if meta.sandbox.mode == "single_reply" and not scenario.sandbox.solution_path:
            raise PackError(f"{place}: field sandbox.solution_path: required in a single_reply pack")


def read_json_file(path: Path) -> Any:
    """A pack's JSON file, or one PackError line saying why it cannot be read."""
    try:
        return parse_json(read_text(path))
    except OSError as exc:
        raise PackError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise PackError(f"{path}: not valid JSON ({exc})") from None


def load_pack_dir(directory: Path) -> Pack:
    """A pack in our folder format."""
    meta_path = directory / PACK_META_FILE
    meta_data = read_json_file(meta_path)
    meta = _validate(PackMeta, meta_data, str(meta_path))
    if meta.id != directory.name:
        raise PackError(f"{meta_path}: field id: {meta.id!r} must match the folder name {directory.name!r}")
    scenarios_path = directory / SCENARIOS_FILE
    scenarios = _scenarios(scenarios_path, read_json_lines(scenarios_path))
    _check_sandbox(directory, meta, scenarios, scenarios_path)
    return Pack(meta=meta, scenarios=scenarios, source=str(directory))


def load_benchlocal(path: Path) -> Pack:
    """A BenchLocal-format JSONL pack (``__meta__`` line first), upstream files unmodified;
    see ``harness.packs.benchlocal`` for what is honoured, kept, and warned about."""
    pack = benchlocal.import_pack(path, read_json_lines(path), _SCENARIO_KEYS)
    for scenario in pack.scenarios:
        _check_verifier(scenario, f"{path}: scenario {scenario.id}")
    return pack


def load_pack(path: Path) -> Pack:
    """A pack folder (our format) or a BenchLocal .jsonl file."""
    if path.is_dir():
        return load_pack_dir(path)
    if path.suffix == ".jsonl" and path.is_file():
        return load_benchlocal(path)
    raise PackError(f"{path}: not a pack folder (with {PACK_META_FILE}) or a BenchLocal .jsonl file")


def discover_packs(packs_dir: Path) -> dict[str, Pack]:
    """Every pack folder under packs_dir, by id, in name order."""
    if not packs_dir.is_dir():
        raise PackError(f"{packs_dir}: packs folder not found")
    return {d.name: load_pack_dir(d) for d in sorted(packs_dir.iterdir()) if (d / PACK_META_FILE).is_file()}


def select(packs: dict[str, Pack], *, mode: str | None = None, pack_ids: Sequence[str] = (),
           scenario_refs: Sequence[str] = ()) -> list[Pack]:
    """The packs (and scenarios) a run covers: a mode, pack ids, or PACK/SCENARIO references."""
    if scenario_refs:
        chosen: dict[str, list[str]] = {}
        for ref in scenario_refs:
            pack_id, _, scenario_id = ref.partition("/")
            if pack_id not in packs:
                raise PackError(f"--scenario {ref}: no pack {pack_id!r} (known: {', '.join(packs)})")
            if scenario_id not in {s.id for s in packs[pack_id].scenarios}:
                raise PackError(f"--scenario {ref}: pack {pack_id} has no scenario {scenario_id!r}")
            chosen.setdefault(pack_id, []).append(scenario_id)
        return [packs[p].model_copy(update={"scenarios": [s for s in packs[p].scenarios if s.id in ids]})
                for p, ids in chosen.items()]
    if pack_ids:
        missing = [p for p in pack_ids if p not in packs]
        if missing:
            raise PackError(f"--pack {missing[0]}: no such pack (known: {', '.join(packs)})")
        return [packs[p] for p in pack_ids]
    return [p for p in packs.values() if mode in p.meta.modes]
