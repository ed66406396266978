"""A key-protected real llama-server (started with --api-key-file) benchmarks end to end from a
profile that names its key's variable with API_KEY_ENV; without the variable, one line names
it; and the key string appears nowhere under the run's results."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys

import pytest

from harness.serving.images import SMOLLM2_MODEL_FILE
from tests.conftest import REPO_ROOT, free_port

pytestmark = [pytest.mark.docker, pytest.mark.server]
KEY_ENV = "BENCHWRIGHT_TEST_SERVER_KEY"


def _harness(*argv: str, env: dict[str, str], timeout_s: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def keyed(embedded_assets, tmp_path_factory):
    """models.conf of a profile whose server wants a key (read from a file beside the model)."""
    image, models_dir = embedded_assets
    tmp = tmp_path_factory.mktemp("keyed")
    keyed_models = tmp / "models"
    keyed_models.mkdir()
    try:
        os.link(models_dir / SMOLLM2_MODEL_FILE, keyed_models / SMOLLM2_MODEL_FILE)  # no copy on one file system
    except OSError:
        shutil.copy(models_dir / SMOLLM2_MODEL_FILE, keyed_models / SMOLLM2_MODEL_FILE)
    key = "bw-" + secrets.token_hex(16)
    (keyed_models / "server.key").write_text(key + "\n")
    conf = tmp / "models.conf"
    conf.write_text(f"""[bench-keyed]
NAME=SmolLM2 behind a key
MODEL={SMOLLM2_MODEL_FILE}
MODELS_DIR={keyed_models}
IMAGE={image}
CTX_SIZE=2048
PARALLEL=1
PORT={free_port()}
HEALTH_TIMEOUT_S=120
MAX_TOKENS=128
API_KEY_ENV={KEY_ENV}
EXTRA_ARGS=--jinja --threads 2 --no-webui --api-key-file /models/server.key
""")
    return conf, key, tmp


def test_a_missing_key_variable_is_one_line_naming_it(keyed):
    conf, _key, _tmp = keyed
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    done = _harness("verify", "bench-keyed", "--config", str(conf), env=env, timeout_s=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and KEY_ENV in lines[0] and "Traceback" not in done.stderr, done.stderr


def test_a_keyed_server_benchmarks_end_to_end_and_the_key_is_never_written(keyed):
    conf, key, tmp = keyed
    results = tmp / "results"
    env = {**os.environ, KEY_ENV: key}
    done = _harness("run-bench", "bench-keyed", "--config", str(conf), "--results-dir", str(results),
                    "--run-id", "keyed", "--packs", "instructfollow-15/words-exact-12", "--datasets", "humaneval",
                    "--evalplus-limit", "2", "--throughput-runs", "1", "--layers", "none", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = results / "keyed" / "bench-keyed"
    for name in ("verify.json", "throughput.json", "packs.json"):
        assert (run_dir / name).is_file(), f"{name} missing: {sorted(p.name for p in run_dir.iterdir())}"
    written = [p for p in results.rglob("*") if p.is_file()]
    assert len(written) > 10
    leaks = [str(p) for p in written if key.encode() in p.read_bytes()]
    assert not leaks, f"the key was written to {leaks}"
    assert key not in done.stdout + done.stderr

    # The same server refuses requests without the key: the wrong key is one clear failure.
    wrong = {**os.environ, KEY_ENV: "not-the-key"}
    up = _harness("up", "bench-keyed", "--config", str(conf), env=wrong, timeout_s=200)
    try:
        assert up.returncode == 0, up.stderr
        refused = _harness("verify", "bench-keyed", "--config", str(conf), env=wrong, timeout_s=120)
        assert refused.returncode != 0
        assert "401" in refused.stdout and KEY_ENV in refused.stdout, refused.stdout
        assert "not-the-key" not in refused.stdout + refused.stderr
    finally:
        _harness("down", "bench-keyed", "--config", str(conf), env=wrong, timeout_s=120)
