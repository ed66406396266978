from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ProfileError
from harness.serving import compose as serving
from harness.serving.profiles import get_profile, load_profiles
from tests.conftest import GOOD_PROFILE


def test_good_profile_merges_defaults_and_resolves_models_dir(write_conf):
    path = write_conf(GOOD_PROFILE + "PARALLEL=3\nEXTRA_ARGS=--jinja -ot 'blk\\.(1[0-9])\\.ffn=CPU'\n")
    profile = get_profile(path, "bench-tiny")
    assert profile.is_bench and profile.parallel == 3 and profile.gpus == "none"
    assert profile.model_path == path.parent / "models" / "tiny.gguf"
    assert profile.extra_args_list == ["--jinja", "-ot", "blk\\.(1[0-9])\\.ffn=CPU"]
    assert profile.health_timeout_s == 300 and profile.n_gpu_layers == 0


def test_profile_overrides_default_and_comments_are_ignored(write_conf):
    path = write_conf("# top comment\n; also a comment\n[DEFAULT]\nPORT=1\n" + GOOD_PROFILE.split("\n", 3)[3]
                      + "  # indented comment\n")
    assert get_profile(path, "bench-tiny").port == 18500


def test_values_keep_hash_and_equals(write_conf):
    path = write_conf(GOOD_PROFILE + "NAME=Q4 #1 = best\n".replace("NAME", "EXTRA_ARGS").replace(
        "Q4 #1 = best", "--alias 'a#b=c'"))
    assert get_profile(path, "bench-tiny").extra_args_list == ["--alias", "a#b=c"]


def test_non_bench_profile_and_listing_order(write_conf):
    path = write_conf(GOOD_PROFILE + "\n[serve-b]\nNAME=B\nMODEL=tiny.gguf\nIMAGE=i\nCTX_SIZE=1\nPORT=2\n")
    profiles = load_profiles(path)
    assert list(profiles) == ["bench-tiny", "serve-b"]
    assert not profiles["serve-b"].is_bench


# (description, text appended to / replacing the good profile, expected line, fragments of the message)
BASE = GOOD_PROFILE  # bench-tiny section header is on line 4, keys on lines 5-9
MALFORMED = [
    ("malformed line", BASE + "just some words\n", 10, ["malformed line", "just some words"]),
    ("key outside section", "CTX_SIZE=1\n" + BASE, 1, ["CTX_SIZE", "outside any [section]"]),
    ("duplicate section", BASE + "[bench-tiny]\n", 10, ["[bench-tiny]", "duplicate section", "line 4"]),
    ("duplicate key", BASE + "PORT=1\n", 10, ["[bench-tiny] PORT", "duplicate key", "line 9"]),
    ("unknown key with hint", BASE + "CTX_SIZES=1\n", 10, ["CTX_SIZES", "unknown key", "did you mean CTX_SIZE"]),
    ("lower-case key", BASE + "model=x.gguf\n", 10, ["model", "malformed key", "UPPER_CASE"]),
    ("empty key", BASE + "=value\n", 10, ["(empty key)", "malformed key"]),
    ("missing MODEL", BASE.replace("MODEL=tiny.gguf\n", ""), 4, ["[bench-tiny] MODEL", "required key is missing"]),
    ("missing IMAGE", BASE.replace("IMAGE=img:1\n", ""), 4, ["IMAGE", "required"]),
    ("non-integer CTX_SIZE", BASE.replace("CTX_SIZE=1024", "CTX_SIZE=4k"), 8, ["CTX_SIZE", "whole number", "'4k'"]),
    ("zero CTX_SIZE", BASE.replace("CTX_SIZE=1024", "CTX_SIZE=0"), 8, ["CTX_SIZE", "greater than 0"]),
    ("port out of range", BASE.replace("PORT=18500", "PORT=70000"), 9, ["PORT", "65535"]),
    ("port not a number", BASE.replace("PORT=18500", "PORT=http"), 9, ["PORT", "whole number"]),
    ("zero PARALLEL", BASE + "PARALLEL=0\n", 10, ["PARALLEL", "greater than or equal to 1"]),
    ("bad GPUS", BASE.replace("GPUS=none", "GPUS=two"), 2, ["GPUS", "none, all, or comma-separated"]),
    ("negative N_GPU_LAYERS", BASE + "N_GPU_LAYERS=-5\n", 10, ["N_GPU_LAYERS", "greater than or equal to -1"]),
    ("bad HEALTH_TIMEOUT_S", BASE + "HEALTH_TIMEOUT_S=soon\n", 10, ["HEALTH_TIMEOUT_S", "number", "'soon'"]),
    ("unbalanced quote in EXTRA_ARGS", BASE + "EXTRA_ARGS=--alias 'oops\n", 10, ["EXTRA_ARGS", "shell", "quotation"]),
    ("EXTRA_ARGS fights PORT", BASE + "EXTRA_ARGS=--jinja --port 9000\n", 10, ["EXTRA_ARGS", "--port", "PORT"]),
    ("EXTRA_ARGS fights CTX_SIZE", BASE + "EXTRA_ARGS=--ctx-size=4096\n", 10, ["EXTRA_ARGS", "--ctx-size", "CTX_SIZE"]),
    ("MODEL escapes models dir", BASE.replace("MODEL=tiny.gguf", "MODEL=../etc/passwd"), 6,
     ["MODEL", "inside MODELS_DIR"]),
    ("unclosed section header", BASE + "[bench-x\n", 10, ["malformed section header", "[bench-x"]),
    ("empty section name", BASE + "[]\n", 10, ["profile id must be lowercase"]),
    ("section name with spaces", BASE + "[My Profile]\n", 10, ["[My Profile]", "profile id"]),
    ("compose path", BASE + "COMPOSE=../evil.yml\n", 10, ["COMPOSE", "file name"]),
]


def _assert_one_line_error(path, line: int, fragments: list[str]) -> str:
    """Loading ``path`` fails with one line that starts with file:line and holds every fragment."""
    with pytest.raises(ProfileError) as caught:
        load_profiles(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("text,line,fragments", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_profiles_name_file_line_and_key(write_conf, text, line, fragments):
    _assert_one_line_error(write_conf(text), line, fragments)


def test_missing_model_file_names_model_line(write_conf):
    path = write_conf(BASE.replace("MODEL=tiny.gguf", "MODEL=absent.gguf"))
    load_profiles(path)  # parsing alone does not need the file
    with pytest.raises(ProfileError, match=r":6: \[bench-tiny\] MODEL: model file not found: .*absent.gguf"):
        get_profile(path, "bench-tiny")


def test_missing_model_line_found_in_default_section(write_conf):
    path = write_conf("[DEFAULT]\nMODEL=shared.gguf\n" + BASE.split("\n", 3)[3].replace("MODEL=tiny.gguf\n", ""))
    with pytest.raises(ProfileError, match=r":2: \[bench-tiny\] MODEL: model file not found"):
        get_profile(path, "bench-tiny")


def test_unknown_profile_suggests_closest(write_conf):
    path = write_conf(BASE)
    with pytest.raises(ProfileError, match=r"no profile \[bench-tini\]; did you mean bench-tiny"):
        get_profile(path, "bench-tini")


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(ProfileError, match="config file not found"):
        load_profiles(tmp_path / "nope.conf")


def test_config_without_profiles(write_conf):
    with pytest.raises(ProfileError, match="no profiles defined"):
        load_profiles(write_conf("[DEFAULT]\nGPUS=all\n"))


def test_shipped_models_conf_is_valid():
    profiles = load_profiles(Path(__file__).resolve().parents[2] / "models.conf")
    assert "bench-smollm2" in profiles
    assert profiles["bench-smollm2"].n_gpu_layers == 0


def test_model_symlink_leaving_models_dir_is_refused(write_conf, tmp_path):
    outside = tmp_path / "elsewhere.gguf"
    outside.write_bytes(b"GGUF")
    path = write_conf(BASE.replace("MODEL=tiny.gguf", "MODEL=linked.gguf"))
    (path.parent / "models" / "linked.gguf").symlink_to(outside)
    with pytest.raises(ProfileError, match=r":6: \[bench-tiny\] MODEL: .*outside MODELS_DIR.*container only sees"):
        get_profile(path, "bench-tiny")


# --- API profiles: PROVIDER=openai-compatible | anthropic --------------------------------------------

OPENAI_PROFILE = """\
[bench-gpt]
NAME=GPT-4o mini
PROVIDER=openai-compatible
BASE_URL=https://api.openai.com/v1
MODEL_ID=gpt-4o-mini
API_KEY_ENV=OPENAI_API_KEY
PARALLEL=4
MAX_TOTAL_TOKENS=200000
MAX_COST_USD=2
PRICE_IN_PER_MTOK=0.15
PRICE_OUT_PER_MTOK=0.6
"""
ANTHROPIC_PROFILE = """\
[bench-claude]
NAME=Claude
PROVIDER=anthropic
BASE_URL=https://api.anthropic.com
MODEL_ID=claude-sonnet-4-5
API_KEY_ENV=ANTHROPIC_API_KEY
"""
API_BASE = GOOD_PROFILE + "\n" + OPENAI_PROFILE  # [bench-gpt] header on line 11, keys on lines 12-21


def test_openai_compatible_profile(write_conf):
    path = write_conf(API_BASE)
    profile = get_profile(path, "bench-gpt")  # no model file is required
    assert profile.provider == "openai-compatible" and profile.is_api
    assert profile.wire_format == "openai-compatible"
    assert profile.base_url == "https://api.openai.com/v1"  # kept as written
    assert profile.model_id == "gpt-4o-mini" and profile.api_key_env == "OPENAI_API_KEY"
    assert profile.parallel == 4 and profile.requests_in_flight == 4
    assert profile.max_total_tokens == 200000 and profile.max_cost_usd == 2.0
    assert (profile.price_in_per_mtok, profile.price_out_per_mtok) == (0.15, 0.6)
    assert profile.model is None and profile.image is None and profile.port is None and profile.ctx_size is None
    with pytest.raises(ProfileError, match=r"\[bench-gpt\] is an API profile .*no model file"):
        profile.model_path  # noqa: B018


def test_anthropic_profile_and_defaults_for_api_profiles(write_conf):
    path = write_conf(ANTHROPIC_PROFILE + "\n[bench-local]\nNAME=L\nPROVIDER=openai-compatible\n"
                      "BASE_URL=http://gpu-box:8080\n")
    claude, local = load_profiles(path).values()
    assert claude.provider == "anthropic" and claude.is_api and claude.wire_format == "anthropic"
    assert claude.base_url == "https://api.anthropic.com" and claude.model_id == "claude-sonnet-4-5"
    assert claude.api_key_env == "ANTHROPIC_API_KEY" and claude.parallel == 1
    assert claude.max_cost_usd is None and claude.max_total_tokens is None
    # openai-compatible: MODEL_ID and API_KEY_ENV are optional (/v1/models names the model)
    assert local.model_id is None and local.api_key_env is None and local.base_url == "http://gpu-box:8080"


def test_compose_profile_is_the_default_provider(write_conf):
    profile = get_profile(write_conf(BASE + "API_KEY_ENV=LLAMA_KEY\nMODEL_ID=tiny\n"), "bench-tiny")
    assert profile.provider == "compose" and not profile.is_api and profile.wire_format == "openai-compatible"
    assert profile.api_key_env == "LLAMA_KEY" and profile.model_id == "tiny"


@pytest.mark.parametrize("bind,host", [("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"), ("10.0.0.5", "10.0.0.5")])
def test_base_url_of_compose_profile(write_conf, bind, host):
    profile = get_profile(write_conf(BASE + f"BIND_ADDRESS={bind}\n"), "bench-tiny")
    assert profile.base_url == f"http://{host}:18500"
    assert serving.deployment_for(profile, Path("compose")).base_url == profile.base_url


def test_default_compose_keys_are_ignored_for_api_profiles(write_conf):
    path = write_conf("[DEFAULT]\nGPUS=none\nMODEL=shared.gguf\nIMAGE=img:1\nCTX_SIZE=1024\nPORT=1\n"
                      "HEALTH_TIMEOUT_S=60\nCOMPOSE=other.yml\nBASE_URL=https://openrouter.ai/api/v1\n\n"
                      + OPENAI_PROFILE.replace("BASE_URL=https://api.openai.com/v1\n", "")
                      + "\n[serve-local]\nNAME=Local\n")
    profiles = load_profiles(path)
    gpt, local = profiles["bench-gpt"], profiles["serve-local"]
    assert gpt.model is None and gpt.port is None and gpt.image is None and gpt.compose == "llama-cpp.yml"
    assert gpt.base_url == "https://openrouter.ai/api/v1"  # the DEFAULT's BASE_URL is inherited
    # and the compose profile inherits the compose keys, not the DEFAULT's BASE_URL
    assert local.endpoint_url is None and local.base_url == "http://127.0.0.1:1" and local.model == "shared.gguf"


def test_deployment_for_api_profile_is_refused(write_conf):
    profile = get_profile(write_conf(API_BASE), "bench-gpt")
    with pytest.raises(ProfileError, match=r"\[bench-gpt\] is an API profile \(PROVIDER=openai-compatible\): "
                                           r"it has no compose server to bring up"):
        serving.deployment_for(profile, Path("compose"))


# (description, models.conf text, expected line, fragments of the message, text that must NOT appear)
API_MALFORMED = [
    ("BASE_URL missing", API_BASE.replace("BASE_URL=https://api.openai.com/v1\n", ""), 11,
     ["[bench-gpt] BASE_URL", "required key is missing for PROVIDER=openai-compatible"], None),
    ("BASE_URL not a URL", API_BASE.replace("https://api.openai.com/v1", "api.openai.com/v1"), 14,
     ["[bench-gpt] BASE_URL", "http:// or https://"], None),
    ("BASE_URL without host", API_BASE.replace("https://api.openai.com/v1", "https:///v1"), 14,
     ["[bench-gpt] BASE_URL", "with a host"], None),
    ("BASE_URL wrong scheme, credentials not echoed", API_BASE.replace("https://api.", "ftp://me:hunter2@api."), 14,
     ["[bench-gpt] BASE_URL", "http:// or https://"], "hunter2"),
    ("MODEL in an API section", API_BASE + "MODEL=gpt.gguf\n", 22,
     ["[bench-gpt] MODEL: not used by PROVIDER=openai-compatible", "name the API model with MODEL_ID"], None),
    ("PORT in an API section", API_BASE + "PORT=8080\n", 22,
     ["[bench-gpt] PORT: not used by PROVIDER=openai-compatible", "BASE_URL"], None),
    ("GPUS in an API section", API_BASE + "GPUS=all\n", 22, ["[bench-gpt] GPUS: not used by PROVIDER"], None),
    ("API_KEY_ENV malformed, value not echoed", API_BASE.replace("API_KEY_ENV=OPENAI_API_KEY", "API_KEY_ENV=sk-abc123"),
     16, ["[bench-gpt] API_KEY_ENV", "NAME of an environment variable"], "sk-abc123"),
    ("API_KEY_ENV starts with a digit", API_BASE.replace("API_KEY_ENV=OPENAI_API_KEY", "API_KEY_ENV=1KEY"),
     16, ["[bench-gpt] API_KEY_ENV", "environment variable"], None),
    ("API_KEY holds a key", API_BASE + "API_KEY=sk-secret\n", 22,
     ["[bench-gpt] API_KEY: unknown key", "API_KEY_ENV", "name of an environment variable"], "sk-secret"),
    ("MAX_COST_USD without prices", API_BASE.replace("PRICE_IN_PER_MTOK=0.15\n", ""), 19,
     ["[bench-gpt] MAX_COST_USD", "PRICE_IN_PER_MTOK and PRICE_OUT_PER_MTOK"], None),
    ("MAX_COST_USD zero", API_BASE.replace("MAX_COST_USD=2", "MAX_COST_USD=0"), 19,
     ["[bench-gpt] MAX_COST_USD", "greater than 0"], None),
    ("negative price", API_BASE.replace("PRICE_OUT_PER_MTOK=0.6", "PRICE_OUT_PER_MTOK=-1"), 21,
     ["[bench-gpt] PRICE_OUT_PER_MTOK", "greater than or equal to 0"], None),
    ("MAX_TOTAL_TOKENS not a number", API_BASE.replace("MAX_TOTAL_TOKENS=200000", "MAX_TOTAL_TOKENS=200k"), 18,
     ["[bench-gpt] MAX_TOTAL_TOKENS", "whole number", "'200k'"], None),
    ("anthropic without MODEL_ID", ANTHROPIC_PROFILE.replace("MODEL_ID=claude-sonnet-4-5\n", ""), 1,
     ["[bench-claude] MODEL_ID", "required key is missing for PROVIDER=anthropic"], None),
    ("unknown PROVIDER", API_BASE.replace("PROVIDER=openai-compatible", "PROVIDER=openai"), 13,
     ["[bench-gpt] PROVIDER", "compose, openai-compatible, anthropic", "'openai'"], None),
    ("BASE_URL in a compose profile", BASE + "BASE_URL=http://127.0.0.1:18500\n", 10,
     ["[bench-tiny] BASE_URL: not used by PROVIDER=compose", "BIND_ADDRESS and PORT"], None),
]


@pytest.mark.parametrize("text,line,fragments,absent", [m[1:] for m in API_MALFORMED],
                         ids=[m[0] for m in API_MALFORMED])
def test_malformed_api_profiles_name_file_line_and_key(write_conf, text, line, fragments, absent):
    message = _assert_one_line_error(write_conf(text), line, fragments)
    if absent:
        assert absent not in message, message


def test_profiles_verb_lists_api_profiles_with_redacted_url(write_conf, capsys):
    from harness.cli.main import main

    path = write_conf(API_BASE.replace("https://api.openai.com/v1", "https://me:hunter2@proxy.example/v1")
                      + "\n" + ANTHROPIC_PROFILE)
    assert main(["profiles", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    rows = out.splitlines()
    assert any(row.startswith("bench-tiny") and "compose" in row and "tiny.gguf" in row and "yes" in row
               for row in rows), out
    assert any(row.startswith("bench-gpt") and "openai-compatible" in row and "https://***@proxy.example/v1" in row
               and "gpt-4o-mini" in row for row in rows), out
    assert any(row.startswith("bench-claude") and "anthropic" in row and "https://api.anthropic.com" in row
               for row in rows), out


@pytest.mark.parametrize("verb", ["env", "up", "wait", "down"])
def test_compose_verbs_refuse_api_profiles_in_one_line(write_conf, capsys, verb):
    from harness.cli.main import main

    path = write_conf(API_BASE)
    assert main([verb, "bench-gpt", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: {path}: [bench-gpt] is an API profile (PROVIDER=openai-compatible): "
                           "it has no compose server to bring up")
