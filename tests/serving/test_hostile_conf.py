"""models.conf values that used to pass validation and break later: each is now refused (or
read the one documented way) at load time, in one line naming the file, line and key."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from harness.errors import ProfileError
from harness.paths import COMPOSE_DIR
from harness.serving.compose import deployment_for
from harness.serving.profiles import get_profile, load_profiles
from tests.conftest import GOOD_PROFILE


def _error(path: Path) -> str:
    with pytest.raises(ProfileError) as caught:
        load_profiles(path)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_an_inline_comment_is_read_the_same_way_on_every_key(write_conf):
    conf = write_conf(GOOD_PROFILE.replace("PORT=18500", "PORT=18500   # the main server")
                      + 'EXTRA_ARGS=--jinja --alias "a # b"  # comment, not arguments\n')
    profile = load_profiles(conf)["bench-tiny"]
    assert profile.port == 18500
    assert profile.extra_args_list == ["--jinja", "--alias", "a # b"]


def test_an_empty_extra_args_means_no_arguments(write_conf):
    profile = load_profiles(write_conf(GOOD_PROFILE + 'EXTRA_ARGS=""\n'))["bench-tiny"]
    assert profile.extra_args_list == []
    message = _error(write_conf(GOOD_PROFILE + "EXTRA_ARGS=--jinja '' --threads 2\n"))
    assert message.endswith("EXTRA_ARGS: has an empty argument ('' or \"\"); remove it "
                            "(got \"--jinja '' --threads 2\")")


@pytest.mark.parametrize("line, key", [
    ("HEALTH_TIMEOUT_S=inf", "HEALTH_TIMEOUT_S"), ("HEALTH_TIMEOUT_S=nan", "HEALTH_TIMEOUT_S"),
    ("HEALTH_TIMEOUT_S=1e9", "HEALTH_TIMEOUT_S"), ("MAX_TOKENS=99999999999", "MAX_TOKENS"),
    ("BIND_ADDRESS=my laptop", "BIND_ADDRESS"), ("BIND_ADDRESS=999.1.1.1", "BIND_ADDRESS"),
    ("PARALLEL=2\nBENCH_PARALLEL=3", "BENCH_PARALLEL"),
])
def test_values_that_only_break_later_are_refused(write_conf, line, key):
    conf = write_conf(GOOD_PROFILE + line + "\n")
    number = GOOD_PROFILE.count("\n") + line.count("\n") + 1
    assert _error(conf).startswith(f"{conf}:{number}: [bench-tiny] {key}: ")


def test_two_profiles_that_share_a_compose_project_are_refused(write_conf):
    section = GOOD_PROFILE.split("[bench-tiny]")[1]
    conf = write_conf(GOOD_PROFILE + "\n[bench-tiny.2]" + section + "\n[bench-tiny-2]" + section)
    message = _error(conf)
    assert "[bench-tiny-2]: names the same compose project as [bench-tiny.2]" in message


def test_a_compose_file_that_is_not_there_is_named_before_up(write_conf):
    conf = write_conf(GOOD_PROFILE + "COMPOSE=tgi.yml\n")
    with pytest.raises(ProfileError, match=rf"{conf}:10: \[bench-tiny\] COMPOSE: no compose file tgi.yml"):
        deployment_for(get_profile(conf, "bench-tiny"), COMPOSE_DIR)


def test_a_byte_order_mark_is_skipped(write_conf):
    conf = write_conf("")
    conf.write_bytes(b"\xef\xbb\xbf" + GOOD_PROFILE.encode())
    assert list(load_profiles(conf)) == ["bench-tiny"]


def test_a_fifo_or_a_device_as_config_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "conf.fifo"
    os.mkfifo(fifo)
    outcome: list[str] = []
    reader = threading.Thread(target=lambda: outcome.append(_error(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert outcome and "not a regular file" in outcome[0]
    assert "not a regular file" in _error(Path("/dev/zero"))


def test_an_unknown_profile_among_thousands_is_a_short_line(write_conf):
    section = GOOD_PROFILE.split("[bench-tiny]")[1]
    conf = write_conf("".join(f"[p{i}]{section}\n".replace("PORT=18500", f"PORT={10000 + i}") for i in range(3000)))
    with pytest.raises(ProfileError) as caught:
        get_profile(conf, "nope")
    assert len(str(caught.value)) < 600 and "(2980 more)" in str(caught.value)
