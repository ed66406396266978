from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ProfileError
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
    ("MODEL escapes models dir", BASE.replace("MODEL=tiny.gguf", "MODEL=../etc/passwd"), 6, ["MODEL", "inside MODELS_DIR"]),
    ("unclosed section header", BASE + "[bench-x\n", 10, ["malformed section header", "[bench-x"]),
    ("empty section name", BASE + "[]\n", 10, ["profile id must be lowercase"]),
    ("section name with spaces", BASE + "[My Profile]\n", 10, ["[My Profile]", "profile id"]),
    ("compose path", BASE + "COMPOSE=../evil.yml\n", 10, ["COMPOSE", "file name"]),
]


@pytest.mark.parametrize("text,line,fragments", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_profiles_name_file_line_and_key(write_conf, text, line, fragments):
    path = write_conf(text)
    with pytest.raises(ProfileError) as caught:
        load_profiles(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "\n" not in message


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
