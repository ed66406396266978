"""The manifest stays readable across versions, and an unreadable one is one line naming the file."""

from __future__ import annotations

import json

import pytest

from harness.errors import HarnessError
from harness.overnight.manifest import Manifest, ManifestStore, read_manifest

# What the harness wrote before runs recorded their provenance (schema 1, no provenance fields).
OLD_MANIFEST = {
    "schema_version": 1, "run_id": "20251120-220000", "config": "/srv/bench/models.conf",
    "options": {"packs": "medium", "datasets": "humaneval", "evalplus_limit": None, "throughput_runs": 5,
                "pipeline": True},
    "pipelined": True, "created_at": "2025-11-20T22:00:00Z", "updated_at": "2025-11-20T23:10:00Z",
    "finished_at": "2025-11-20T23:10:00Z", "wall_seconds": 4200.0, "overlap_seconds": 310.5,
    "profiles": [{"profile": "bench-smollm2", "status": "completed", "reason": "",
                  "steps": [{"name": "env", "status": "done", "background": False,
                             "started_at": "2025-11-20T22:00:01Z", "ended_at": "2025-11-20T22:00:02Z",
                             "seconds": 0.6, "exit_code": 0, "log": "bench-smollm2/env.log", "detail": ""}]}],
}


def test_a_manifest_from_before_provenance_still_loads(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(OLD_MANIFEST))
    manifest = read_manifest(path)
    assert manifest.provenance is None and manifest.resumed_at == [] and manifest.warnings == []
    assert manifest.profile("bench-smollm2").provenance is None
    assert manifest.profile("bench-smollm2").step("env").seconds == 0.6


def test_the_new_fields_round_trip(tmp_path):
    store = ManifestStore(tmp_path / "manifest.json", Manifest(run_id="r", config="c", warnings=["w"]))
    store.save()
    assert ManifestStore.load(store.path).manifest.warnings == ["w"]


@pytest.mark.parametrize(("text", "says"), [
    ("{", "Invalid JSON"),
    ('{"run_id": "r"}', "config: Field required"),
    ('{"run_id": "r", "config": "c", "profiles": [{"status": "done"}]}', "profiles.0.profile: Field required"),
])
def test_a_broken_manifest_is_one_line_naming_the_file_and_field(tmp_path, text, says):
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(HarnessError) as caught:
        ManifestStore.load(path)  # resuming a run reads it the same way
    message = str(caught.value)
    assert message.startswith(f"{path}: not a run manifest (") and says in message and "\n" not in message


def test_bad_bytes_and_a_missing_file_are_one_line_too(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(HarnessError, match="not a run manifest"):
        read_manifest(path)
    with pytest.raises(HarnessError, match="no manifest"):
        read_manifest(tmp_path / "elsewhere" / "manifest.json")
