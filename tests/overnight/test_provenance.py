"""What a run records about itself when it starts, and what a resumed run does with that record.
No Docker: the image inspector is a stand-in, the steps are not run."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from harness import __version__
from harness.overnight import allbench
from harness.overnight.manifest import read_manifest
from harness.overnight.provenance import (
    NOT_BUILT,
    image_identity,
    model_checksum,
    profile_changes,
    profile_provenance,
    run_provenance,
)
from harness.serving.envfile import render_env
from harness.serving.profiles import Profile, get_profile
from tests.conftest import COMPOSE_DIR, GOOD_PROFILE

IMAGE_ID = "sha256:" + "ab" * 32


def _engine_has(image: str) -> tuple[str, list[str]]:
    return IMAGE_ID, [f"{image.split(':')[0]}@sha256:{'cd' * 32}"]


def _engine_lacks(image: str) -> tuple[str, list[str]]:
    from python_on_whales.exceptions import NoSuchImage

    raise NoSuchImage(["docker", "image", "inspect", image], 1, b"[]", b"Error: No such image: " + image.encode())


def _git_repo(path: Path, *, dirty: bool) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout.strip()
    path.mkdir(exist_ok=True)
    git("init", "-q")
    (path / "tracked.txt").write_text("one\n")
    git("add", "tracked.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "first")
    (path / "untracked.txt").write_text("does not make the tree dirty\n")
    if dirty:
        (path / "tracked.txt").write_text("two\n")
    return git("rev-parse", "HEAD")


@pytest.mark.parametrize("dirty", [False, True])
def test_run_provenance_records_commit_dirty_flag_and_host(tmp_path, dirty):
    commit = _git_repo(tmp_path / "repo", dirty=dirty)
    record = run_provenance(tmp_path / "repo")
    assert (record.git_commit, record.git_dirty, record.git_note) == (commit, dirty, "")
    assert record.harness_version == __version__ and record.python_version.count(".") == 2 and record.hostname


def test_run_provenance_outside_a_checkout_is_a_note_not_an_error(tmp_path):
    record = run_provenance(tmp_path)
    assert record.git_commit is None and record.git_dirty is None and str(tmp_path) in record.git_note


def test_profile_provenance_records_the_profile_env_image_and_checksum(write_conf):
    profile = get_profile(write_conf(GOOD_PROFILE), "bench-tiny")
    record = profile_provenance(profile, _engine_has)
    assert record.resolved == profile.model_dump(mode="json", by_alias=True)
    assert record.resolved["CTX_SIZE"] == 1024 and record.resolved["IMAGE"] == "img:1"
    assert record.compose_env.splitlines()[2:] == render_env(profile).splitlines()[2:]  # header has a timestamp
    assert (record.image, record.image_id, record.image_note) == ("img:1", IMAGE_ID, "")
    assert record.image_digests == [f"img@sha256:{'cd' * 32}"]
    assert record.model_sha256 == hashlib.sha256(b"GGUF").hexdigest() and record.model_sha256_source == "computed"
    assert record.model_sha256_seconds is not None and record.model_bytes == 4


def test_an_image_not_built_yet_is_recorded_as_such(write_conf):
    record = profile_provenance(get_profile(write_conf(GOOD_PROFILE), "bench-tiny"), _engine_lacks)
    assert (record.image_id, record.image_note) == (None, NOT_BUILT)


def test_an_engine_that_fails_is_recorded_with_its_error():
    def broken(image: str) -> tuple[str, list[str]]:
        raise RuntimeError("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
    image_id, digests, note = image_identity("img:1", broken)
    assert image_id is None and digests == [] and "Cannot connect to the Docker daemon" in note


def test_model_checksum_prefers_the_sha256_file_beside_the_model(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x" * 3_000_000)  # more than one 1 MiB read
    assert model_checksum(model)[:2] == (hashlib.sha256(model.read_bytes()).hexdigest(), "computed")
    (tmp_path / "m.gguf.sha256").write_text(f"{'e' * 64}  m.gguf\n")
    assert model_checksum(model) == ("e" * 64, "m.gguf.sha256 file", None, "")
    sha, source, seconds, note = model_checksum(tmp_path / "gone.gguf")
    assert sha is None and "not found" in note


class _ApiProfile(Profile):
    """Stands in for the hosted-API profiles another module adds: same record, no server of ours."""

    @property
    def is_api(self) -> bool:
        return True


def test_api_profiles_record_only_the_resolved_profile(write_conf):
    profile = get_profile(write_conf(GOOD_PROFILE), "bench-tiny")
    api = _ApiProfile.model_validate(profile.model_dump(exclude_none=True))

    def must_not_be_asked(image: str) -> tuple[str, list[str]]:
        raise AssertionError("API profiles have no image")

    record = profile_provenance(api, must_not_be_asked)
    assert record.is_api and record.resolved == api.model_dump(mode="json", by_alias=True)
    assert record.compose_env is None and record.image is None and record.model_sha256 is None


def test_profile_changes_name_every_changed_key():
    assert profile_changes({"A": 1, "B": "x", "D": 0}, {"A": 2, "B": "x", "C": None}) == [
        "A: 1 → 2", "C: (unset) → None", "D: 0 → (unset)"]
    assert profile_changes({"A": 1}, {"A": 1}) == []


# --- run_all records provenance once; the steps themselves are replaced (no Docker here) ---------------

@pytest.fixture
def no_steps(monkeypatch):
    ran: list[str] = []
    monkeypatch.setattr(allbench, "_run_profile", lambda store, record, ctx, evaluator: ran.append(record.profile))
    return ran


def _run(conf: Path, run_dir: Path, repo: Path):
    return allbench.run_all(conf, ["bench-tiny"], run_dir, allbench.BenchOptions(pipeline=False),
                            COMPOSE_DIR, repo, inspect_image=_engine_has)


def test_run_all_records_provenance_at_start_and_keeps_it_on_resume(write_conf, tmp_path, no_steps, capsys):
    repo = tmp_path / "repo"
    _git_repo(repo, dirty=False)
    conf = write_conf(GOOD_PROFILE)
    run_dir = tmp_path / "results" / "run1"
    _run(conf, run_dir, repo)
    first = read_manifest(run_dir / "manifest.json")
    assert no_steps == ["bench-tiny"] and first.provenance is not None and first.resumed_at == []
    original = first.profile("bench-tiny").provenance
    assert original is not None and original.resolved["CTX_SIZE"] == 1024 and original.image_id == IMAGE_ID

    conf.write_text(GOOD_PROFILE.replace("CTX_SIZE=1024", "CTX_SIZE=2048"))
    _run(conf, run_dir, repo)
    resumed = read_manifest(run_dir / "manifest.json")
    assert len(resumed.resumed_at) == 1 and resumed.provenance == first.provenance
    assert resumed.profile("bench-tiny").provenance == original  # the original record stays
    [warning] = resumed.warnings
    assert warning.startswith("[bench-tiny] profile changed since the run started")
    assert "CTX_SIZE: 1024 → 2048" in warning
    assert "WARNING: [bench-tiny] profile changed" in capsys.readouterr().err

    _run(conf, run_dir, repo)  # the same change again: still one warning, two resumes
    again = read_manifest(run_dir / "manifest.json")
    assert len(again.warnings) == 1 and len(again.resumed_at) == 2


def test_a_changed_checkout_on_resume_is_a_warning(write_conf, tmp_path, no_steps):
    repo = tmp_path / "repo"
    _git_repo(repo, dirty=False)
    conf = write_conf(GOOD_PROFILE)
    run_dir = tmp_path / "results" / "run1"
    _run(conf, run_dir, repo)
    (repo / "tracked.txt").write_text("edited\n")
    _run(conf, run_dir, repo)
    [warning] = read_manifest(run_dir / "manifest.json").warnings
    assert warning.startswith("the harness changed since the run started") and "False" in warning and "True" in warning


def test_resuming_a_run_from_before_provenance_records_it_and_says_when(write_conf, tmp_path, no_steps):
    conf = write_conf(GOOD_PROFILE)
    run_dir = tmp_path / "results" / "old"
    run_dir.mkdir(parents=True)
    old = allbench.new_manifest("old", conf, ["bench-tiny"], allbench.BenchOptions()).model_dump(mode="json")
    del old["provenance"], old["resumed_at"], old["warnings"]
    for record in old["profiles"]:
        del record["provenance"]
    (run_dir / "manifest.json").write_text(json.dumps(old))  # as an older harness wrote it
    _run(conf, run_dir, tmp_path)
    manifest = read_manifest(run_dir / "manifest.json")
    assert manifest.provenance is not None and manifest.profile("bench-tiny").provenance is not None
    assert "started before provenance was recorded" in manifest.warnings[0]


def test_an_invalid_profile_gets_no_record_and_fails_as_before(write_conf, tmp_path, no_steps):
    conf = write_conf(GOOD_PROFILE)
    manifest = allbench.run_all(conf, ["bench-nope"], tmp_path / "r", allbench.BenchOptions(pipeline=False),
                                COMPOSE_DIR, tmp_path, inspect_image=_engine_has)
    record = manifest.profile("bench-nope")
    assert record.provenance is None and record.status == "failed" and "no profile [bench-nope]" in record.reason
    assert no_steps == []
