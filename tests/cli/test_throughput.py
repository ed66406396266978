"""`bench PROFILE`: brings the profile's server up, records the load time, benches it."""

from __future__ import annotations

import json
import os

import pytest

from harness.cli.main import main
from harness.serving import compose as serving
from harness.serving.profiles import get_profile
from tests.conftest import COMPOSE_DIR, embedded_conf_text

PORT_RANGE = range(18400, 18500)  # this test's host ports


def _free_port_in_range() -> int:
    return next(port for port in PORT_RANGE if serving.port_is_free("127.0.0.1", port))


@pytest.mark.docker
@pytest.mark.server
def test_bench_profile_starts_server_and_records_load_time(embedded_assets, tmp_path, capsys):
    image, models_dir = embedded_assets
    profile_id = f"bench-bwtest-{os.getpid()}"
    conf = tmp_path / "models.conf"
    conf.write_text(embedded_conf_text(profile_id, _free_port_in_range(), models_dir=models_dir, image=image,
                                       parallel=1, ctx_size=1024))
    deployment = serving.deployment_for(get_profile(conf, profile_id), COMPOSE_DIR)
    out = tmp_path / "bench.json"
    args = ["bench", profile_id, "--config", str(conf), "--runs", "1", "--warmup", "0", "--max-tokens", "12",
            "--prompt-lengths", "24", "--prompt-runs", "1", "--save-json", str(out)]
    try:
        assert main(args) == 0
        first = json.loads(out.read_text())
        assert first["profile"] == profile_id and first["load_time_s"] > 0
        assert first["load_time_note"].startswith("seconds from compose up")
        assert first["slots"] == 1 and [c["streams"] for c in first["concurrency"]] == [1]  # PARALLEL=1 caps it
        # Already running: benched as is, the load time is not invented.
        assert main(args) == 0
        second = json.loads(out.read_text())
        assert second["load_time_s"] is None and "already running" in second["load_time_note"]
        assert main(args + ["--load-time-s", "12.5"]) == 0
        assert json.loads(out.read_text())["load_time_s"] == 12.5
    finally:
        serving.down(deployment)
        deployment.env_path.unlink(missing_ok=True)
