from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.serving.envfile import env_values, project_name, render_env, write_env
from harness.serving.profiles import get_profile
from tests.conftest import GOOD_PROFILE

COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
TRICKY_ARGS = ("--jinja -ot 'blk\\.(4[0-9]|5[0-9])\\.ffn_.*=CPU' --system-prompt \"it's $HOME # not a comment\" "
               "--alias 'a b'")
TRICKY_WORDS = ["--jinja", "-ot", "blk\\.(4[0-9]|5[0-9])\\.ffn_.*=CPU", "--system-prompt",
                "it's $HOME # not a comment", "--alias", "a b"]


def test_header_names_profile_and_time(write_conf):
    profile = get_profile(write_conf(GOOD_PROFILE), "bench-tiny")
    text = render_env(profile, now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    first = text.splitlines()[0]
    assert "[bench-tiny]" in first and "2026-01-02T03:04:05Z" in first and str(profile.source) in first


def test_only_non_empty_keys(write_conf):
    profile = get_profile(write_conf(GOOD_PROFILE), "bench-tiny")
    values = env_values(profile)
    assert "EXTRA_ARGS" not in values and "GPUS" not in values  # empty / none
    assert values["COMPOSE_PROJECT_NAME"] == "bw-bench-tiny" == project_name(profile)
    assert values["MODELS_DIR"] == str((profile.source.parent / "models").resolve())
    gpu = get_profile(write_conf(GOOD_PROFILE.replace("GPUS=none", "GPUS=0,1")), "bench-tiny")
    assert env_values(gpu)["GPUS"] == "0,1"


def test_extra_args_split_like_a_shell(write_conf):
    profile = get_profile(write_conf(GOOD_PROFILE + f"EXTRA_ARGS={TRICKY_ARGS}\n"), "bench-tiny")
    assert profile.extra_args_list == TRICKY_WORDS


def test_write_is_atomic_and_overwrites(write_conf, tmp_path):
    profile = get_profile(write_conf(GOOD_PROFILE), "bench-tiny")
    target = tmp_path / "out" / ".env"
    target.parent.mkdir()
    target.write_text("stale\n")
    write_env(profile, target)
    assert "stale" not in target.read_text() and not list(target.parent.glob("*.partial"))


@pytest.mark.docker
@pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed")
def test_compose_reads_back_exact_words(write_conf, tmp_path):
    """Real `docker compose config`: the server command gets exactly the words shlex gave us."""
    profile = get_profile(write_conf(GOOD_PROFILE + f"EXTRA_ARGS={TRICKY_ARGS}\n"), "bench-tiny")
    env_path = write_env(profile, tmp_path / ".env.test")
    done = subprocess.run(["docker", "compose", "-f", str(COMPOSE_DIR / "llama-cpp.yml"), "--env-file", str(env_path),
                           "config", "--format", "json"], capture_output=True, text=True, check=True)
    config = json.loads(done.stdout)
    service = config["services"]["llama-server"]
    command = [word.replace("$$", "$") for word in service["command"]]  # config output escapes $ as $$
    assert command[-len(TRICKY_WORDS):] == TRICKY_WORDS
    assert command[:2] == ["--model", "/models/tiny.gguf"] and "1024" in command
    assert config["name"] == "bw-bench-tiny"
    assert service["ports"][0]["host_ip"] == "127.0.0.1" and service["ports"][0]["published"] == "18500"
    assert service["volumes"][0]["read_only"] is True
