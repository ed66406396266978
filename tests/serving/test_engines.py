"""ENGINE=llama.cpp|vllm|sglang: profile checks, the .env, the rendered compose, health-wait and verify.

No GPU here, so vLLM and SGLang never start: the compose files are checked with the real
`docker compose config` (docker-marked), and health-wait and verify run against
``tests/doubles/engine_server.py``, which answers in those engines' shapes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from harness.endpoint import verify
from harness.endpoint.client import EndpointClient
from harness.endpoint.target import open_client, target_from_profile
from harness.endpoint.throughput import BenchSettings, run_bench
from harness.errors import EndpointError, ProfileError, ServingError
from harness.serving import compose as serving
from harness.serving.engines import (
    ENGINE_SPECS,
    ask_loaded,
    health_url,
    owned_flag,
    parse_sglang_info,
    parse_vllm_models,
)
from harness.serving.envfile import env_values, render_env, write_env
from harness.serving.health import ContainerState, wait_until_healthy
from harness.serving.profiles import Profile, get_profile, load_profiles
from tests.conftest import COMPOSE_DIR
from tests.doubles.engine_server import (
    EngineServer,
    sglang_model_info,
    sglang_server_info,
    vllm_models,
)

RUNNING = ContainerState(running=True, status="running")
QWEN = "Qwen2.5-0.5B-Instruct"


def _conf(engine: str, *, port: int = 18600, gpus: str = "0,1", extra: str = "", default: str = "") -> str:
    """models.conf text with one profile [p] (its keys start on line 3 + the DEFAULT lines)."""
    head = f"[DEFAULT]\n{default}" if default else ""
    return (f"{head}[p]\nNAME=Qwen on {engine}\nENGINE={engine}\nMODEL={QWEN}\nIMAGE=vendor/{engine}:1\n"
            f"CTX_SIZE=4096\nPARALLEL=4\nPORT={port}\nGPUS={gpus}\n{extra}")


@pytest.fixture
def conf(tmp_path: Path):
    """Write a models.conf beside models/<QWEN>/ (an HF-style folder) and load profile [p]."""
    folder = tmp_path / "models" / QWEN
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (tmp_path / "models" / "tiny.gguf").write_bytes(b"GGUF")

    def _load(text: str, profile_id: str = "p") -> Profile:
        path = tmp_path / "models.conf"
        path.write_text(text)
        return get_profile(path, profile_id)

    return _load


def _error(conf, text: str) -> str:
    with pytest.raises(ProfileError) as caught:
        conf(text)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- profiles: what each engine takes and refuses -----------------------------------------------------------


def test_engine_picks_its_compose_file(conf):
    assert conf(_conf("vllm")).compose == "vllm.yml"
    assert conf(_conf("sglang")).compose == "sglang.yml"
    assert conf(_conf("sglang", extra="COMPOSE=my-sglang.yml\n")).compose == "my-sglang.yml"
    llama = conf(_conf("llama.cpp", gpus="none").replace(f"MODEL={QWEN}", "MODEL=tiny.gguf"))
    assert llama.engine == "llama.cpp" and llama.compose == "llama-cpp.yml"


# (id, ENGINE, GPUS, extra lines, line of the error, fragments of the message)
REFUSED = [
    ("vllm N_GPU_LAYERS", "vllm", "0,1", "N_GPU_LAYERS=99\n", 10,
     ["[p] N_GPU_LAYERS: not used by ENGINE=vllm", "llama.cpp's layer offload", "vLLM keeps every layer"]),
    ("sglang N_GPU_LAYERS", "sglang", "0,1", "N_GPU_LAYERS=0\n", 10,
     ["N_GPU_LAYERS: not used by ENGINE=sglang", "SGLang"]),
    ("vllm GPUS=all", "vllm", "all", "", 9, ["[p] GPUS: ENGINE=vllm splits the model", "GPUS=0,1", "(got 'all')"]),
    ("vllm context flag", "vllm", "0,1", "EXTRA_ARGS=--max-model-len 8192\n", 10,
     ["[p] EXTRA_ARGS: sets --max-model-len, which the profile sets through CTX_SIZE"]),
    ("vllm underscore spelling", "vllm", "0,1", "EXTRA_ARGS=--max_num_seqs=8\n", 10,
     ["sets --max_num_seqs", "PARALLEL"]),
    ("vllm served name", "vllm", "0,1", "EXTRA_ARGS=--served-model-name x\n", 10,
     ["--served-model-name", "MODEL_ID"]),
    ("vllm tensor parallel", "vllm", "0,1", "EXTRA_ARGS=--enforce-eager -tp 2\n", 10, ["sets -tp", "GPUS"]),
    ("vllm model flag", "vllm", "0,1", "EXTRA_ARGS=--model /models/other\n", 10, ["sets --model", "MODEL"]),
    ("sglang context flag", "sglang", "0,1", "EXTRA_ARGS=--context-length=8192\n", 10,
     ["--context-length", "CTX_SIZE"]),
    ("sglang slots flag", "sglang", "0,1", "EXTRA_ARGS=--max-running-requests 8\n", 10, ["PARALLEL"]),
    ("sglang tp alias", "sglang", "0,1", "EXTRA_ARGS=--tp 2\n", 10, ["sets --tp", "GPUS"]),
    ("sglang model path", "sglang", "0,1", "EXTRA_ARGS=--model-path /models/x\n", 10, ["--model-path", "MODEL"]),
    ("sglang port", "sglang", "0,1", "EXTRA_ARGS=--port 1\n", 10, ["sets --port", "PORT"]),
    ("unknown engine", "tgi", "0,1", "", 3, ["[p] ENGINE:", "'llama.cpp', 'vllm' or 'sglang'", "(got 'tgi')"]),
]


@pytest.mark.parametrize("engine,gpus,extra,line,fragments", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_each_engine_refuses_its_own_keys_and_flags_in_one_line(conf, tmp_path, engine, gpus, extra, line, fragments):
    message = _error(conf, _conf(engine, gpus=gpus, extra=extra))
    assert message.startswith(f"{tmp_path / 'models.conf'}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_llama_cpp_keeps_its_own_flag_table(conf):
    """The flags llama.cpp owned before engines existed are still refused, and only for llama.cpp."""
    table = ENGINE_SPECS["llama.cpp"].owned_flags
    assert table == {"-m": "MODEL", "--model": "MODEL", "-c": "CTX_SIZE", "--ctx-size": "CTX_SIZE",
                     "-ngl": "N_GPU_LAYERS", "--n-gpu-layers": "N_GPU_LAYERS", "--gpu-layers": "N_GPU_LAYERS",
                     "-np": "PARALLEL", "--parallel": "PARALLEL", "--port": "PORT", "--host": "BIND_ADDRESS"}
    assert owned_flag("llama.cpp", "--ctx_size=5") is None  # llama-server has no underscore spellings
    assert owned_flag("vllm", "-c") is None and owned_flag("vllm", "--max_model_len=5") == ("--max_model_len",
                                                                                           "CTX_SIZE")
    # a flag another engine owns is the user's to pass here (vLLM's own parser judges it)
    assert conf(_conf("vllm", extra="EXTRA_ARGS=--ctx-size 5 --gpu-memory-utilization 0.85\n")).extra_args_list[-1] \
        == "0.85"


def test_n_gpu_layers_from_default_is_ignored_by_vllm_but_kept_for_llama_cpp(conf, tmp_path):
    text = _conf("vllm", default="N_GPU_LAYERS=99\nGPUS=0\n").replace("GPUS=0,1\n", "")
    conf(text + "\n[l]\nNAME=L\nMODEL=tiny.gguf\nIMAGE=i\nCTX_SIZE=1024\nPORT=18601\n")
    profiles = load_profiles(tmp_path / "models.conf")
    assert profiles["p"].n_gpu_layers == 0 and profiles["p"].gpus == "0"
    assert profiles["l"].n_gpu_layers == 99 and profiles["l"].engine == "llama.cpp"


def test_model_folder_is_served_by_vllm_and_sglang_only(conf, tmp_path):
    assert conf(_conf("vllm")).model_path.is_dir()
    assert conf(_conf("sglang", extra="MODEL_ID=qwen\n")).model_path.is_dir()
    message = _error(conf, _conf("llama.cpp", gpus="none"))
    assert f":4: [p] MODEL: model file not found: {tmp_path / 'models' / QWEN}" in message
    message = _error(conf, _conf("vllm").replace(f"MODEL={QWEN}", "MODEL=Qwen3-8B"))
    assert ":4: [p] MODEL: model not found:" in message and "serves a model folder" in message


def test_links_inside_a_model_folder_must_stay_in_models_dir(conf, tmp_path):
    # a Hugging Face cache snapshot: links into ../../blobs, all under MODELS_DIR: fine
    blobs = tmp_path / "models" / "hub" / "blobs"
    snapshot = tmp_path / "models" / "hub" / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (blobs / "f00d").write_text("{}")
    (snapshot / "config.json").symlink_to(Path("../../blobs/f00d"))
    conf(_conf("vllm").replace(f"MODEL={QWEN}", "MODEL=hub/snapshots/abc123"))
    # a weight file linked from outside MODELS_DIR: the container could not read it
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"x")
    (tmp_path / "models" / QWEN / "model.safetensors").symlink_to(outside)
    message = _error(conf, _conf("sglang"))
    assert ":4: [p] MODEL:" in message and "model.safetensors (in the model folder) links to" in message
    assert "outside MODELS_DIR" in message


# --- the .env each engine's compose reads -------------------------------------------------------------------

LLAMA_CPP_ENV = """\
# Written by benchwright for profile [bench-tiny] from {dir}/models.conf at 2026-01-02T03:04:05Z.
# Regenerated on every `python -m harness env|up`; edit models.conf instead.
COMPOSE_PROJECT_NAME='bw-bench-tiny'
PROFILE='bench-tiny'
NAME='Tiny'
IMAGE='img:1'
MODELS_DIR='{dir}/models'
MODEL='tiny.gguf'
CTX_SIZE='1024'
N_GPU_LAYERS='99'
PARALLEL='2'
PORT='18500'
BIND_ADDRESS='127.0.0.1'
EXTRA_ARGS="--jinja -ot 'blk\\\\.(4[0-9])\\\\.ffn_.*=CPU' --alias 'it'\\"'\\"'s $$HOME'"
GPUS='0,1'
"""


def test_llama_cpp_env_is_byte_for_byte_what_it_was(conf, tmp_path):
    """Written from the .env the harness wrote for this profile before ENGINE existed."""
    profile = conf("[DEFAULT]\nGPUS=0,1\n\n[bench-tiny]\nNAME=Tiny\nMODEL=tiny.gguf\nIMAGE=img:1\nCTX_SIZE=1024\n"
                   "PORT=18500\nN_GPU_LAYERS=99\nPARALLEL=2\n"
                   "EXTRA_ARGS=--jinja -ot 'blk\\.(4[0-9])\\.ffn_.*=CPU' --alias \"it's $HOME\"\n", "bench-tiny")
    text = render_env(profile, now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert text == LLAMA_CPP_ENV.format(dir=tmp_path.resolve())


def test_vllm_env_holds_its_engines_values(conf, tmp_path):
    values = env_values(conf(_conf("vllm", extra="MODEL_ID=qwen-0.5b\n")))
    assert list(values) == ["COMPOSE_PROJECT_NAME", "PROFILE", "NAME", "ENGINE", "IMAGE", "MODELS_DIR", "MODEL",
                            "SERVED_MODEL_NAME", "CTX_SIZE", "PARALLEL", "TENSOR_PARALLEL_SIZE", "PORT",
                            "BIND_ADDRESS", "GPUS"]
    assert values["SERVED_MODEL_NAME"] == "qwen-0.5b" and values["MODEL"] == QWEN
    assert values["TENSOR_PARALLEL_SIZE"] == "2" and values["GPUS"] == "0,1" and values["CTX_SIZE"] == "4096"
    single = env_values(conf(_conf("sglang", gpus="3")))
    assert single["TENSOR_PARALLEL_SIZE"] == "1" and single["SERVED_MODEL_NAME"] == QWEN  # MODEL when no MODEL_ID
    cpu = env_values(conf(_conf("vllm", gpus="none")))
    assert cpu["TENSOR_PARALLEL_SIZE"] == "1" and "GPUS" not in cpu


def test_gpu_overlay_follows_the_engine(conf, tmp_path):
    files = serving.deployment_for(conf(_conf("sglang")), COMPOSE_DIR).compose_files
    assert [f.name for f in files] == ["sglang.yml", "sglang.gpu.yml"]
    files = serving.deployment_for(conf(_conf("vllm", gpus="none")), COMPOSE_DIR).compose_files
    assert [f.name for f in files] == ["vllm.yml"]


# --- docker compose config: what the container would be started with ---------------------------------------

TRICKY_ARGS = "--chat-template-kwargs '{\"enable_thinking\": false}' --override-generation-config \"{}\" --seed 7"
TRICKY_WORDS = ["--chat-template-kwargs", '{"enable_thinking": false}', "--override-generation-config", "{}",
                "--seed", "7"]


def _rendered(profile: Profile, tmp_path: Path) -> dict:
    deployment = serving.deployment_for(profile, COMPOSE_DIR)
    env_path = write_env(profile, tmp_path / f".env.{profile.id}")
    files = [arg for path in deployment.compose_files for arg in ("-f", str(path))]
    done = subprocess.run(["docker", "compose", *files, "--env-file", str(env_path), "config", "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["name"] == "bw-p"
    service = config["services"][ENGINE_SPECS[profile.engine].service]
    service["command"] = [word.replace("$$", "$") for word in service["command"]]  # config escapes $ as $$
    return service


EXPECTED_COMMAND = {
    "vllm": (["vllm", "serve"],
             [f"/models/{QWEN}", "--served-model-name", "qwen 0.5b", "--host", "0.0.0.0", "--port", "8000",
              "--max-model-len", "4096", "--max-num-seqs", "4", "--tensor-parallel-size", "2"]),
    "sglang": (["python3", "-m", "sglang.launch_server"],
               ["--model-path", f"/models/{QWEN}", "--served-model-name", "qwen 0.5b", "--host", "0.0.0.0",
                "--port", "30000", "--context-length", "4096", "--max-running-requests", "4", "--tp-size", "2"]),
}


@pytest.mark.docker
@pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed")
@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_compose_config_renders_the_engine_server(conf, tmp_path, engine):
    profile = conf(_conf(engine, extra=f"MODEL_ID=qwen 0.5b\nBIND_ADDRESS=0.0.0.0\nEXTRA_ARGS={TRICKY_ARGS}\n"))
    service = _rendered(profile, tmp_path)
    entrypoint, command = EXPECTED_COMMAND[engine]
    assert service["image"] == f"vendor/{engine}:1" and service["entrypoint"] == entrypoint
    assert service["command"] == command + TRICKY_WORDS  # served name with a space stays one word
    port = service["ports"][0]
    assert (port["host_ip"], port["published"], port["target"]) == ("0.0.0.0", "18600",
                                                                    ENGINE_SPECS[engine].container_port)
    volume = service["volumes"][0]
    assert volume == {"type": "bind", "source": str(tmp_path.resolve() / "models"), "target": "/models",
                      "read_only": True}
    assert service["environment"] == {"CUDA_VISIBLE_DEVICES": "0,1", "HF_HUB_OFFLINE": "1"}
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"capabilities": ["gpu"], "driver": "nvidia", "count": -1}]  # -1: all
    assert int(service["shm_size"]) >= 8 * 2**30 and service["labels"]["benchwright.engine"] == engine


@pytest.mark.docker
@pytest.mark.skipif(shutil.which("docker") is None, reason="docker CLI not installed")
def test_compose_config_without_gpus_has_no_reservation(conf, tmp_path):
    service = _rendered(conf(_conf("vllm", gpus="none")), tmp_path)
    assert "deploy" not in service and "CUDA_VISIBLE_DEVICES" not in service["environment"]
    assert service["command"][service["command"].index("--tensor-parallel-size") + 1] == "1"
    assert service["command"][2] == QWEN  # served under MODEL when there is no MODEL_ID


# --- what the server says it loaded -------------------------------------------------------------------------


def test_loaded_model_is_read_from_each_engines_own_answer():
    vllm = parse_vllm_models(vllm_models("qwen", f"/models/{QWEN}", 4096))
    assert (vllm.model, vllm.model_path, vllm.context_tokens, vllm.slots) == ("qwen", f"/models/{QWEN}", 4096, None)
    sglang = parse_sglang_info(sglang_model_info(f"/models/{QWEN}"),
                               sglang_server_info("qwen", f"/models/{QWEN}", 8192, 6, 2))
    assert (sglang.model, sglang.model_path, sglang.context_tokens, sglang.slots) == ("qwen", f"/models/{QWEN}",
                                                                                      8192, 6)
    odd = parse_vllm_models({"data": [{"id": "", "max_model_len": True, "root": 5}]})
    assert (odd.model, odd.model_path, odd.context_tokens) == (None, None, None)  # odd values are "not told"


def test_asking_the_wrong_engine_names_the_missing_path():
    with EngineServer("vllm", served_name="qwen", model_path="/models/q", context_tokens=4096) as double:
        with EndpointClient(double.base_url) as client:
            with pytest.raises(EndpointError, match=r"/get_model_info: HTTP 404"):
                ask_loaded("sglang", client.get)
            assert ask_loaded("vllm", client.get).context_tokens == 4096


# --- health-wait and verify against the engine doubles -------------------------------------------------------


def _double_profile(conf, engine: str, double: EngineServer, extra: str = "") -> Profile:
    return conf(_conf(engine, port=int(double.base_url.rsplit(":", 1)[1]), extra=extra))


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_health_wait_lasts_until_the_engine_has_loaded(conf, engine):
    with EngineServer(engine, served_name=QWEN, model_path=f"/models/{QWEN}", context_tokens=4096,
                      ready_after_s=0.6) as double:
        url = health_url(_double_profile(conf, engine, double).base_url, engine)
        assert url.endswith(ENGINE_SPECS[engine].health_path)
        if engine == "sglang":
            assert httpx.get(url).status_code == 503  # loading
        else:
            with pytest.raises(httpx.HTTPError):  # nothing answers yet
                httpx.get(url)
        waited = wait_until_healthy(url, container_state=lambda: RUNNING, container_logs=lambda: "",
                                    timeout_s=10, poll_s=0.1)
    assert 0.5 <= waited < 5


def test_health_wait_timeout_names_the_engines_health_path(conf):
    with EngineServer("sglang", served_name=QWEN, model_path=f"/models/{QWEN}", context_tokens=4096,
                      ready_after_s=60) as double:
        with pytest.raises(ServingError, match=r"not healthy after 0.4s \(/health_generate answered 503\)"):
            wait_until_healthy(health_url(_double_profile(conf, "sglang", double).base_url, "sglang"),
                               container_state=lambda: RUNNING,
                               container_logs=lambda: "", timeout_s=0.4, poll_s=0.1)
    with EngineServer("vllm", served_name=QWEN, model_path=f"/models/{QWEN}", context_tokens=4096,
                      ready_after_s=60) as double:
        with pytest.raises(ServingError, match=r"\(/health not answering \(RemoteProtocolError\)\)"):
            wait_until_healthy(health_url(_double_profile(conf, "vllm", double).base_url, "vllm"),
                               container_state=lambda: RUNNING,
                               container_logs=lambda: "", timeout_s=0.4, poll_s=0.1)


def _verify(profile: Profile, double: EngineServer) -> dict[str, verify.Check]:
    """verify as `python -m harness verify PROFILE` runs it: the profile's target, then the checks."""
    assert profile.base_url == double.base_url
    with open_client(target_from_profile(profile), {}) as client:
        checks = verify.run_checks(client, profile)
    return {check.name: check for check in checks}


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_verify_passes_against_an_engine_serving_the_profile(conf, engine):
    with EngineServer(engine, served_name="qwen", model_path=f"/models/{QWEN}", context_tokens=4096,
                      slots=4, tp_size=2) as double:
        checks = _verify(_double_profile(conf, engine, double, "MODEL_ID=qwen\n"), double)
        sent = [r.json["model"] for r in double.requests_to("/v1/chat/completions")]
    assert verify.failure_count(list(checks.values()), strict=True) == 0, verify.format_checks(list(checks.values()))
    assert f"{ENGINE_SPECS[engine].health_path} answers 200" in checks
    assert "context size applied" in checks and "model loaded as the profile says" in checks
    assert ("server slots applied" in checks) == (engine == "sglang")  # vLLM does not say its max-num-seqs
    assert sent and set(sent) == {"qwen"}  # every request named the served model


def test_verify_fails_when_the_engine_loaded_other_settings(conf):
    with EngineServer("sglang", served_name="qwen", model_path="/models/Other-7B", context_tokens=2048,
                      slots=16) as double:
        checks = _verify(_double_profile(conf, "sglang", double, "MODEL_ID=qwen\n"), double)
    assert not checks["context size applied"].passed and "2048 tokens" in checks["context size applied"].detail
    assert not checks["server slots applied"].passed and "PARALLEL 4" in checks["server slots applied"].detail
    loaded = checks["model loaded as the profile says"]
    assert not loaded.passed and "/models/Other-7B" in loaded.detail
    assert checks["factual answer contains 'Paris'"].passed  # the API itself works


def test_verify_fails_when_requests_name_another_model(conf):
    with EngineServer("vllm", served_name="qwen", model_path=f"/models/{QWEN}", context_tokens=4096) as double:
        checks = _verify(_double_profile(conf, "vllm", double, "MODEL_ID=qwen-typo\n"), double)
    assert not checks["/v1/models lists a model"].passed
    assert not checks["model loaded as the profile says"].passed
    fact = checks["factual answer contains 'Paris'"]
    assert not fact.passed and "does not exist" in fact.detail


def test_verify_says_when_the_engine_is_not_the_one_named(conf):
    with EngineServer("vllm", served_name=QWEN, model_path=f"/models/{QWEN}", context_tokens=4096) as double:
        checks = _verify(_double_profile(conf, "sglang", double), double)
    settings = checks["profile settings applied (SGLang)"]
    assert not settings.passed and "/get_model_info: HTTP 404" in settings.detail and "is it SGLang" in settings.detail


def test_throughput_runs_unchanged_against_vllm(conf):
    with EngineServer("vllm", served_name="qwen", model_path=f"/models/{QWEN}", context_tokens=4096) as double:
        settings = BenchSettings(runs=1, warmup_runs=0, prompt_lengths_tokens=[], concurrency_levels=[1],
                                 ignore_eos="off")
        result = run_bench(double.base_url, settings)
    assert result.model == "qwen" and result.server_kind == "openai-compatible" and len(result.runs) == 1
    assert result.runs[0].completion_tokens > 0
