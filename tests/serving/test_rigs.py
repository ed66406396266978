"""Rigs named by Docker contexts: profile keys, how a context's host is read, how an unreachable
rig is told apart in seconds, the SSH forward's command line, and the GPU query parser.

Contexts here are real `docker context create` entries pointing at hosts that do not exist (a
unix socket nobody listens on, an ssh host): the docker CLI itself reads and refuses them."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from harness.errors import ProfileError, ServingError
from harness.overnight import allbench
from harness.serving import rigs
from harness.serving.profiles import ENDPOINT_OVERRIDES_ENV, get_profile, load_profiles

RIG_PROFILE = """\
[bench-far]
NAME=Far
MODEL=tiny.gguf
MODELS_DIR={models}
IMAGE=img:1
CTX_SIZE=1024
PORT=18500
DOCKER_CONTEXT={context}

[bench-near]
NAME=Near
MODEL=tiny.gguf
IMAGE=img:1
CTX_SIZE=1024
PORT=18501

[bench-api]
PROVIDER=openai-compatible
NAME=API
BASE_URL=https://api.example.com/v1
"""


def test_a_rig_profile_needs_the_rigs_absolute_models_dir(write_conf):
    conf = write_conf(RIG_PROFILE.format(models="models", context="rig2"))
    with pytest.raises(ProfileError, match=r"models\.conf:4: \[bench-far\] MODELS_DIR: must be an absolute path "
                                           r"on the rig when DOCKER_CONTEXT is set"):
        load_profiles(conf)


def test_rig_names_and_lanes(write_conf):
    conf = write_conf(RIG_PROFILE.format(models="/srv/models", context="rig2"))
    profiles = load_profiles(conf)
    assert [profiles[p].rig for p in ("bench-far", "bench-near", "bench-api")] == ["rig2", "local", "api"]
    # the rig's model file is the rig's: the controller does not insist on seeing it
    assert get_profile(conf, "bench-far").model_path == Path("/srv/models/tiny.gguf")
    assert allbench._lanes(conf, ["bench-far", "bench-near", "bench-api", "bench-gone"]) == {
        "rig2": ["bench-far"], "local": ["bench-near", "bench-gone"], "api": ["bench-api"]}


@pytest.mark.parametrize("context", ["-rig", "rig 2", "rig/2", "ssh://me@rig2"])
def test_a_context_must_be_a_context_name(write_conf, context):
    conf = write_conf(RIG_PROFILE.format(models="/srv/models", context=context))
    with pytest.raises(ProfileError, match=r":8: \[bench-far\] DOCKER_CONTEXT: must be the name of a Docker context"):
        load_profiles(conf)


def test_api_profiles_take_no_context(write_conf):
    conf = write_conf(RIG_PROFILE.format(models="/srv/models", context="rig2") + "DOCKER_CONTEXT=rig2\n")
    with pytest.raises(ProfileError, match=r"\[bench-api\] DOCKER_CONTEXT: not used by PROVIDER=openai-compatible"):
        load_profiles(conf)


def test_the_tunnelled_address_replaces_only_a_rig_profiles_url(write_conf, monkeypatch):
    conf = write_conf(RIG_PROFILE.format(models="/srv/models", context="rig2"))
    monkeypatch.setenv(ENDPOINT_OVERRIDES_ENV, json.dumps({"bench-far": "http://127.0.0.1:40001",
                                                           "bench-near": "http://127.0.0.1:40002"}))
    profiles = load_profiles(conf)
    assert profiles["bench-far"].base_url == "http://127.0.0.1:40001"
    assert profiles["bench-near"].base_url == "http://127.0.0.1:18501"  # no rig: no tunnel
    monkeypatch.setenv(ENDPOINT_OVERRIDES_ENV, json.dumps({"bench-far": "http://evil.example:80"}))
    assert load_profiles(conf)["bench-far"].base_url == "http://127.0.0.1:18500"  # only a local forward counts


@pytest.mark.parametrize(("host", "remote"), [
    ("unix:///var/run/docker.sock", False), ("unix:///run/bw/rig2.sock", False), ("tcp://127.0.0.1:2375", False),
    ("ssh://me@rig2", True), ("tcp://10.0.0.7:2376", True), ("ssh://127.0.0.2", True)])
def test_remote_rigs(host, remote):
    assert rigs.is_remote(host) is remote


def test_the_ssh_forward():
    assert rigs.ssh_forward_argv("ssh://me@rig2:2222", 40001, 8080) == [
        "ssh", "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
        "-L", "127.0.0.1:40001:127.0.0.1:8080", "-p", "2222", "me@rig2"]
    with pytest.raises(ServingError, match="only ssh:// contexts can be tunnelled"):
        rigs.ssh_forward_argv("tcp://10.0.0.7:2376", 40001, 8080)


def test_gpu_query_lines():
    text = "NVIDIA GeForce RTX 3090, 24576 MiB, 550.54.14\nNVIDIA GeForce RTX 3090, 24576 MiB, 550.54.14\n"
    assert rigs.parse_gpu_query(text) == (["NVIDIA GeForce RTX 3090, 24576 MiB"] * 2, "550.54.14", "")
    gpus, driver, note = rigs.parse_gpu_query("NVIDIA-SMI has failed because it couldn't communicate\n")
    assert gpus == [] and driver is None and "couldn't communicate" in note


@pytest.fixture
def dead_contexts(tmp_path):
    """Two real contexts: a unix socket nobody listens on, and an ssh host that does not resolve."""
    names = [f"bw-test-{uuid.uuid4().hex[:8]}", f"bw-test-{uuid.uuid4().hex[:8]}"]
    hosts = [f"unix://{tmp_path}/nobody.sock", "ssh://me@rig9.invalid:2222"]
    for name, host in zip(names, hosts, strict=True):
        subprocess.run(["docker", "context", "create", name, "--docker", f"host={host}"], check=True,
                       capture_output=True)
    yield names
    for name in names:
        subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True, check=False)


def test_an_unreachable_rig_is_told_in_seconds(dead_contexts, tmp_path):
    dead, ssh = dead_contexts
    assert rigs.context_host(dead) == f"unix://{tmp_path}/nobody.sock"
    assert rigs.context_host(ssh) == "ssh://me@rig9.invalid:2222"
    assert rigs.context_host("bw-no-such-context") == ""
    started = time.monotonic()
    problem = rigs.rig_problem(dead)
    assert problem is not None and problem.startswith(f"rig {dead}: ") and "nobody.sock" in problem
    record = rigs.fingerprint(dead)
    assert time.monotonic() - started < 10
    assert record.rig == dead and not record.reachable and record.note == problem
    far = rigs.rig_problem(ssh)
    assert far is not None and far.startswith(f"rig {ssh}: ")
    missing = rigs.rig_problem("bw-no-such-context")
    assert missing is not None and "bw-no-such-context" in missing


@pytest.mark.parametrize("verb", ["up", "wait", "down"])
def test_serving_verbs_on_a_missing_or_dead_rig_say_so_in_one_line(dead_contexts, write_conf, verb):
    conf = write_conf(RIG_PROFILE.format(models="/srv/models", context="bw-no-such-context"))
    done = subprocess.run([sys.executable, "-m", "harness", verb, "bench-far", "--config", str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"error: [bench-far] rig bw-no-such-context: no Docker context named "
                                   f"bw-no-such-context (create it: docker context create bw-no-such-context "
                                   f"--docker host=ssh://USER@HOST) (DOCKER_CONTEXT in {conf})")
    conf.write_text(RIG_PROFILE.format(models="/srv/models", context=dead_contexts[0]))
    done = subprocess.run([sys.executable, "-m", "harness", verb, "bench-far", "--config", str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: [bench-far] rig {dead_contexts[0]}: ") and "nobody.sock" in done.stderr


@pytest.mark.docker
def test_the_local_rig_fingerprint():
    record = rigs.fingerprint(None)
    info = json.loads(subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True,
                                     check=True).stdout)
    assert record.reachable and record.rig == "local"
    assert (record.engine_version, record.cpus, record.memory_bytes) == (info["ServerVersion"], info["NCPU"],
                                                                        info["MemTotal"])
    assert record.gpus == [] and record.gpu_note == "no NVIDIA runtime on this engine"


def _rig_profile(write_conf, context: str):
    conf = write_conf(RIG_PROFILE.format(models="/srv/models", context=context))
    return load_profiles(conf)["bench-far"]


def test_a_tunnel_that_cannot_open_says_why(dead_contexts, write_conf):
    """Real ssh against a host that does not resolve: a one-line reason, in seconds, no ssh left behind."""
    _, ssh = dead_contexts
    profile = _rig_profile(write_conf, ssh)
    assert rigs.needs_tunnel(profile)
    started = time.monotonic()
    with pytest.raises(ServingError, match=rf"\[bench-far\] SSH tunnel to rig {ssh} failed: .*rig9\.invalid"):
        rigs.open_tunnel(profile)
    assert time.monotonic() - started < rigs.TUNNEL_TIMEOUT_S


FORWARDER = '''#!{python}
"""Stands in for ssh -N -L: forwards the -L port locally, so the harness's process handling is what is tested."""
import socket, sys, threading
spec = sys.argv[sys.argv.index("-L") + 1]
bind, lport, rhost, rport = spec.split(":")
server = socket.create_server((bind, int(lport)))
def pipe(a, b):
    while (data := a.recv(65536)):
        b.sendall(data)
    b.shutdown(socket.SHUT_WR)
while True:
    client, _ = server.accept()
    upstream = socket.create_connection((rhost, int(rport)))
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
'''


def test_a_tunnel_reaches_the_rigs_loopback_and_closes(dead_contexts, write_conf, tmp_path, monkeypatch):
    """The forward's local end answers for the rig's port, and close() leaves no process behind."""
    _, ssh = dead_contexts
    fake = tmp_path / "bin" / "ssh"
    fake.parent.mkdir()
    fake.write_text(FORWARDER.replace("{python}", sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conf = write_conf(RIG_PROFILE.format(models="/srv/models", context=ssh).replace("PORT=18500",
                                                                                   f"PORT={server.server_port}"))
    profile = load_profiles(conf)["bench-far"]
    tunnel = rigs.open_tunnel(profile)
    try:
        assert tunnel.url != f"http://127.0.0.1:{server.server_port}"
        assert httpx.get(tunnel.url + "/", timeout=5).status_code == 200
    finally:
        tunnel.close()
        server.shutdown()
    assert tunnel.process.poll() is not None
