"""The second Docker engine of tests/rigs.py: a rig of its own beside this machine's engine, reached by
its Docker context, whose published ports answer here. Losing it (kill) fails fast and leaves nothing
running; restart brings it back on the same data root; a killed test session's engine is cleaned up by
the next one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import docker as docker_sdk
import httpx
import pytest
from python_on_whales import DockerClient

from harness.serving import images, rigs
from tests.conftest import REPO_ROOT, free_port
from tests.rigs import SecondEngine, clean_leftovers

pytestmark = pytest.mark.docker

# A one-line HTTP server: perl-base is in every Debian image, python3 is not.
HTTP_SERVER = (r'use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalPort => 8000, Listen => 5, ReuseAddr => 1)'
               r' or die $!; while (my $c = $s->accept) { while (<$c>) { last if /^\r?\n$/ }'
               r' print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nrig2 $ENV{HOSTNAME}\n"; close $c }')
FAST_S = 3.0  # a lost rig must fail a call within this, not hang


def _debian_image() -> str:
    """A Debian image this machine has (the base, else the registry's slim one, else llama-server's)."""
    for tag in (images.LOCAL_BASE_IMAGE, images.REGISTRY_BASE_IMAGE, images.LLAMA_SERVER_CPU_IMAGE):
        if images.image_exists(tag):
            return tag
    return images.resolve_base_image(None)


def _serve(engine: SecondEngine, image: str, port: int) -> str:
    """Start the HTTP server on the engine, published on 127.0.0.1:port; its container id."""
    return engine.docker("run", "-d", "-p", f"127.0.0.1:{port}:8000", "--entrypoint", "perl", image,
                         "-e", HTTP_SERVER).stdout.strip()


def _get_until_answered(url: str, timeout_s: float = 15.0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, timeout=2.0).text.strip()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_the_second_engine_is_a_rig_of_its_own_behind_a_context(second_engine):
    here = subprocess.run(["docker", "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()
    there = second_engine.docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()
    assert there == str(second_engine.data_root) and there != here
    # the harness reaches it as it reaches any rig: by context name
    assert rigs.context_host(second_engine.context) == second_engine.host
    assert rigs.rig_problem(second_engine.context) is None
    assert str(DockerClient(context=second_engine.context).info().docker_root_dir) == there
    print(f"second engine: dockerd up in {second_engine.seconds_to_start:.2f}s, "
          f"images loaded in {second_engine.seconds_to_load:.1f}s")


def test_a_container_there_answers_here_a_lost_rig_fails_fast_and_comes_back(second_engine):
    image = _debian_image()
    loaded, load_s = _timed(lambda: second_engine.load_images([image]))
    port = free_port()
    container = _serve(second_engine, image, port)
    url = f"http://127.0.0.1:{port}/"
    try:
        assert _get_until_answered(url) == f"rig2 {container[:12]}"
        mine = subprocess.run(["docker", "ps", "-q", "--no-trunc"], capture_output=True, text=True, check=True,
                              timeout=30).stdout.split()
        assert container not in mine  # it runs on the second engine, not this machine's

        _, kill_s = _timed(second_engine.kill)
        assert second_engine.pid is None and second_engine.processes() == set()  # no orphan shim or server
        cli, cli_s = _timed(lambda: subprocess.run(
            ["docker", "--context", second_engine.context, "version", "--format", "{{.Server.Version}}"],
            capture_output=True, text=True, timeout=10))
        assert cli.returncode != 0 and cli_s < FAST_S, (cli_s, cli.stderr)
        started = time.monotonic()
        with pytest.raises(docker_sdk.errors.DockerException):
            docker_sdk.DockerClient(base_url=second_engine.host, timeout=5).ping()
        sdk_s = time.monotonic() - started
        assert sdk_s < FAST_S
        problem, probe_s = _timed(lambda: rigs.rig_problem(second_engine.context))
        assert problem and second_engine.context in problem and probe_s < FAST_S, (problem, probe_s)
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2.0)

        restart_s = second_engine.restart()
        assert second_engine.docker("inspect", "--format", "{{.State.Status}}", container).stdout.strip() == "exited"
        second_engine.docker("start", container)
        assert _get_until_answered(url) == f"rig2 {container[:12]}"  # same data root, bridge and port
        print(f"second engine: load {loaded or 'nothing (already there)'} {load_s:.1f}s, kill {kill_s:.3f}s, "
              f"lost rig: CLI fails in {cli_s:.3f}s, SDK in {sdk_s:.3f}s, rig_problem in {probe_s:.3f}s; "
              f"restart {restart_s:.2f}s")
    finally:
        second_engine.docker("rm", "-f", container, check=False, timeout_s=10)


ORPHAN = """
import os, signal, sys
from tests.rigs import SecondEngine
name, image, port, server = sys.argv[1:]
engine = SecondEngine(name)
engine.start([image])
engine.docker("run", "-d", "-p", f"127.0.0.1:{port}:8000", "--entrypoint", "perl", image, "-e", server)
print(engine.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # a test session killed: no fixture teardown, no atexit
"""


def test_a_killed_sessions_engine_is_cleaned_and_a_live_one_left_alone(second_engine):
    name, image, port = f"bw-rig2-orphan-{os.getpid()}", _debian_image(), free_port()
    done = subprocess.run([sys.executable, "-c", ORPHAN, name, image, str(port), HTTP_SERVER], capture_output=True,
                          text=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=120)
    orphan_dockerd = int(done.stdout.split()[0]) if done.stdout.strip() else None
    orphan = SecondEngine(name)
    try:
        assert orphan_dockerd and Path(f"/proc/{orphan_dockerd}").exists(), done.stderr[-2000:]
        assert _get_until_answered(f"http://127.0.0.1:{port}/").startswith("rig2 ")  # an orphan holding a port
        cleaned = clean_leftovers(second_engine.base_dir)
        assert name in cleaned and second_engine.name not in cleaned
        assert orphan.processes() == set() and not orphan.dir.exists()
        assert not Path(f"/sys/class/net/{orphan.bridge}").exists()
        assert rigs.context_host(name) == ""
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0)
        assert second_engine.ping()  # the live session's engine is untouched
    finally:
        clean_leftovers(second_engine.base_dir)
