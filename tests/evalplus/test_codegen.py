import json

import pytest

from harness.errors import EndpointError
from harness.evalplus.codegen import CodegenConfig, read_journal, run_codegen
from harness.evalplus.datasets import Task
from tests.doubles.scripted_chat import ScriptedServer, chat_reply

TASKS = [Task(task_id=f"T/{i}", prompt=f'def f{i}(x):\n    """Return x + {i}."""\n', entry_point=f"f{i}")
         for i in range(8)]


def _answer(body):
    """Answer each task with its correct function, found from the prompt."""
    prompt = body["messages"][-1]["content"]
    index = int(prompt.split("def f", 1)[1].split("(", 1)[0])
    return 200, chat_reply(f"```python\ndef f{index}(x):\n    return x + {index}\n```", tokens=7)


@pytest.fixture
def server():
    srv = ScriptedServer(_answer).start()
    yield srv
    srv.stop()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_samples_in_dataset_order_with_prompt_and_greedy_defaults(server, tmp_path):
    config = CodegenConfig(base_url=server.base_url, model="m", parallel=4, max_tokens=1234)
    summary = run_codegen(TASKS, config, tmp_path / "humaneval.jsonl", emit=lambda line: None)
    lines = _lines(tmp_path / "humaneval.jsonl")
    assert [line["task_id"] for line in lines] == [t.task_id for t in TASKS]
    assert all(f"return x + {i}" in line["solution"] for i, line in enumerate(lines))
    body = server.bodies[0]
    assert body["max_tokens"] == 1234 and body["temperature"] == 0.0 and "chat_template_kwargs" not in body
    assert body["messages"][0]["content"] == "You are a helpful assistant good at coding."
    assert body["messages"][1]["content"].startswith("Please provide a self-contained Python script")
    assert summary.completion_tokens == 7 * len(TASKS) and summary.canonical
    assert (tmp_path / "humaneval.raw.jsonl").is_file()


def test_parallel_requests_overlap_up_to_the_limit(tmp_path):
    srv = ScriptedServer(_answer, latency_s=0.3).start()
    try:
        run_codegen(TASKS, CodegenConfig(base_url=srv.base_url, model="m", parallel=4), tmp_path / "s.jsonl",
                    emit=lambda line: None)
    finally:
        srv.stop()
    assert srv.max_in_flight == 4  # the wall-clock gain is measured by `make perf`, not asserted here


def test_resume_skips_finished_tasks_and_matches_an_uninterrupted_run(server, tmp_path):
    config = CodegenConfig(base_url=server.base_url, model="m", parallel=2)
    full = tmp_path / "full.jsonl"
    run_codegen(TASKS, config, full, emit=lambda line: None)
    partial = tmp_path / "partial.jsonl"
    run_codegen(TASKS[:3], config, partial, emit=lambda line: None)
    with partial.open("a") as handle:  # a kill mid-write leaves a torn line
        handle.write('{"task_id": "T/5", "solu')
    server.bodies.clear()
    summary = run_codegen(TASKS, config, partial, emit=lambda line: None)
    assert summary.resumed == 3 and summary.generated == 5 and len(server.bodies) == 5
    strip = lambda path: [(line["task_id"], line["solution"]) for line in _lines(path)]  # noqa: E731
    assert strip(partial) == strip(full)


def test_reasoning_models_empty_truncated_and_recovered_are_counted(tmp_path):
    def reply(body):
        index = int(body["messages"][-1]["content"].split("def f", 1)[1].split("(", 1)[0])
        code = f"```python\ndef f{index}(x):\n    return x\n```"
        if index == 0:
            return 200, chat_reply("", reasoning="thinking... " + code, finish_reason="stop")
        if index == 1:
            return 200, chat_reply(None, reasoning="thinking that never ends", finish_reason="length")
        return 200, chat_reply("<think>hmm</think>" + code)

    srv = ScriptedServer(reply).start()
    try:
        config = CodegenConfig(base_url=srv.base_url, model="m", thinking=False, reasoning_effort="low")
        summary = run_codegen(TASKS[:3], config, tmp_path / "s.jsonl", emit=lambda line: None)
    finally:
        srv.stop()
    assert srv.bodies[0]["chat_template_kwargs"] == {"enable_thinking": False}
    assert srv.bodies[0]["reasoning_effort"] == "low"
    assert (summary.recovered_from_reasoning, summary.truncated, summary.empty) == (1, 1, 1)
    records = {r.task_id: r for r in read_journal(tmp_path / "s.jsonl")}
    assert records["T/0"].provenance["recovered_from_reasoning"] and "def f0" in records["T/0"].solution
    assert records["T/1"].solution == "" and records["T/1"].provenance["finish_reason"] == "length"
    assert "think" not in records["T/2"].solution


def test_server_errors_are_recorded_as_data_and_redone_on_resume(tmp_path):
    failing = {"on": True}

    def reply(body):
        return (500, {"error": "boom"}) if failing["on"] else _answer(body)

    srv = ScriptedServer(reply).start()
    try:
        config = CodegenConfig(base_url=srv.base_url, model="m", retries=1)
        summary = run_codegen(TASKS[:2], config, tmp_path / "s.jsonl", emit=lambda line: None)
        assert summary.errors == 2
        assert all(r.provenance["status"] == "error" and r.solution == "" for r in read_journal(tmp_path / "s.jsonl"))
        failing["on"] = False
        summary = run_codegen(TASKS[:2], config, tmp_path / "s.jsonl", emit=lambda line: None)
    finally:
        srv.stop()
    assert summary.errors == 0 and summary.generated == 2
    assert len(_lines(tmp_path / "s.jsonl")) == 2


def test_sampling_from_server_omits_sampler_fields_and_records_props(server, tmp_path):
    config = CodegenConfig(base_url=server.base_url + "/v1", model="m", sampling_from_server=True)
    summary = run_codegen(TASKS[:1], config, tmp_path / "s.jsonl", emit=lambda line: None)
    assert "temperature" not in server.bodies[0]
    assert not summary.canonical and summary.server_sampling == {"temperature": 0.8, "top_k": 40}


def test_unreachable_endpoint_is_one_error(tmp_path):
    from tests.conftest import free_port

    config = CodegenConfig(base_url=f"http://127.0.0.1:{free_port()}", model="m", retries=0)
    with pytest.raises(EndpointError, match=r"unreachable .*run again to resume"):
        run_codegen(TASKS[:1], config, tmp_path / "s.jsonl", emit=lambda line: None)


@pytest.mark.parametrize("bench_parallel, expected", [("", 3), ("BENCH_PARALLEL=1\n", 1)])
def test_a_profiles_bench_parallel_sets_requests_in_flight(write_conf, tmp_path, bench_parallel, expected):
    """PARALLEL=3 server slots; BENCH_PARALLEL=1 (for exactly repeatable greedy answers) keeps one in flight."""
    from harness.paths import default_data_dir
    from tests.cli.test_main import run_cli

    mini = default_data_dir() / "humanevalplus" / "HumanEvalPlus-Mini-v0.1.10.jsonl"
    if not mini.is_file():
        pytest.skip(f"dataset not found: {mini}")
    srv = ScriptedServer(lambda body: (200, chat_reply("```python\ndef f():\n    return 1\n```", tokens=5)),
                         latency_s=0.3).start()
    try:
        port = srv.base_url.rsplit(":", 1)[1]
        conf = write_conf(f"[bench-x]\nNAME=x\nMODEL=tiny.gguf\nIMAGE=img:1\nCTX_SIZE=1024\nPORT={port}\n"
                          f"PARALLEL=3\n{bench_parallel}")
        done = run_cli("codegen", "--profile", "bench-x", "--config", str(conf), "--model", "m", "--dataset-path",
                       str(mini), "--limit", "6", "--out", str(tmp_path / "out"))
    finally:
        srv.stop()
    assert done.returncode == 0, done.stderr
    assert srv.max_in_flight == expected
