"""Every verb that talks to a model takes the same URL forms (with or without /v1, with or
without a trailing slash), the same key option, and says "not a URL or a profile" for a typo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.endpoint.verify import VerifyResult
from harness.paths import default_data_dir
from tests.conftest import REPO_ROOT
from tests.doubles.model_server import Reply, ScriptedModelServer

MINI = default_data_dir() / "humanevalplus" / "HumanEvalPlus-Mini-v0.1.10.jsonl"
CODE = "```python\ndef f():\n    return 1\n```"


def _harness(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=env or dict(os.environ))


def _answer(request):
    body = request.json
    if body.get("tools"):
        return Reply(content=None, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    return Reply(content=f"Paris. {CODE} one two three four five six seven eight nine ten")


def _argv(verb: str, url: str, tmp: Path) -> list[str]:
    if verb == "verify":
        return ["verify", url, "--save-json", str(tmp / "verify.json")]
    if verb == "throughput":
        return ["throughput", url, "--runs", "1", "--warmup", "0", "--max-tokens", "8", "--prompt-lengths", "20",
                "--prompt-runs", "1", "--concurrency", "1", "--save-json", str(tmp / "t.json")]
    if verb == "packs":
        return ["packs", "run", "--base-url", url, "--scenario", "reasonmath-15/shop-change", "--timeout-s", "10",
                "--save-json", str(tmp / "p.json"), "--no-progress"]
    return ["codegen", "--base-url", url, "--dataset-path", str(MINI), "--limit", "2", "--out", str(tmp / "cg")]


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
@pytest.mark.parametrize("verb", ["verify", "throughput", "packs", "codegen"])
def test_every_verb_takes_the_url_with_or_without_v1(verb, suffix, tmp_path):
    if verb == "codegen" and not MINI.is_file():
        pytest.skip(f"dataset not found: {MINI}")
    with ScriptedModelServer(_answer) as server:
        done = _harness(*_argv(verb, server.base_url + suffix, tmp_path))
        paths = {r.path for r in server.requests}
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert not any("/v1/v1" in path for path in paths), paths
    assert "/v1/chat/completions" in paths


def test_a_url_typo_is_not_read_as_a_profile(tmp_path):
    for typo in ("htp://127.0.0.1:8080", "127.0.0.1:8080", "localhost:8080/v1"):
        done = _harness("verify", typo)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "not an http(s) URL or a profile id" in done.stderr, done.stderr


def test_verify_saves_its_checks_and_a_missing_key_is_a_failed_check_naming_the_variable(tmp_path):
    with ScriptedModelServer(_answer, api_key="sk-verify-secret") as server:
        refused = _harness("verify", server.base_url, "--api-key-env", "BW_VERIFY_KEY",
                           "--save-json", str(tmp_path / "refused.json"),
                           env={**os.environ, "BW_VERIFY_KEY": "wrong-key"})
        done = _harness("verify", server.base_url, "--api-key-env", "BW_VERIFY_KEY",
                        "--save-json", str(tmp_path / "v.json"),
                        env={**os.environ, "BW_VERIFY_KEY": "sk-verify-secret"})
    assert refused.returncode != 0 and "401" in refused.stdout and "BW_VERIFY_KEY" in refused.stdout
    assert "wrong-key" not in refused.stdout + refused.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    saved = VerifyResult.model_validate_json((tmp_path / "v.json").read_text())
    assert saved.server_failures == 0 and not saved.capability_misses
    assert any(c.name.startswith("model calls a tool") and c.passed for c in saved.checks)
    for path in tmp_path.iterdir():
        assert b"sk-verify-secret" not in path.read_bytes()


def test_verify_of_an_api_profile_skips_the_llama_cpp_checks(write_conf, tmp_path):
    with ScriptedModelServer(_answer, api_key="sk-a", slots=None) as server:
        conf = write_conf(f"[bench-claude]\nNAME=Claude\nPROVIDER=anthropic\nBASE_URL={server.base_url}/v1\n"
                          "MODEL_ID=claude-test\nAPI_KEY_ENV=BW_ANTHROPIC_KEY\n")
        done = _harness("verify", "bench-claude", "--config", str(conf), "--save-json", str(tmp_path / "v.json"),
                        env={**os.environ, "BW_ANTHROPIC_KEY": "sk-a"})
        paths = [r.path for r in server.requests]
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads((tmp_path / "v.json").read_text())["checks"]
    names = [c["name"] for c in checks]
    assert "/health answers 200" not in names and not any("applied" in name for name in names)
    assert "/v1/messages" in paths and "/health" not in paths
    assert "message_stop seen" in next(c["detail"] for c in checks if c["name"] == "streaming yields chunks")
