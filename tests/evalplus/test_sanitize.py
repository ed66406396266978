import time

from harness.evalplus.sanitize import extract_solution, fenced_code, strip_think


def test_strip_think_removes_closed_and_unclosed_blocks():
    assert strip_think("<think>plan</think>answer") == "answer"
    assert strip_think("answer<think>never closed") == "answer"
    assert strip_think("plan only</think>answer") == "answer"


def test_fenced_code_prefers_the_block_defining_the_entry_point():
    text = "```python\nimport os\n```\nthen\n```python\ndef add(a, b):\n    return a + b\n```"
    assert "def add" in fenced_code(text, "add")


def test_extract_takes_code_from_content_and_drops_chatter():
    reply = "Sure!\n```python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```\nHope it helps."
    extracted = extract_solution(reply, None, "add")
    assert "def add(a, b)" in extracted.solution
    assert "print(" not in extracted.solution and "Sure" not in extracted.solution
    assert not extracted.recovered_from_reasoning


def test_code_in_reasoning_is_recovered_only_when_content_is_empty():
    reasoning = "Let me write it.\n```python\ndef add(a, b):\n    return a + b\n```"
    recovered = extract_solution("", reasoning, "add")
    assert recovered.recovered_from_reasoning and "def add" in recovered.solution
    assert not extract_solution("<think>long</think>", "no code here", "add").solution
    kept = extract_solution("```python\ndef add(a, b):\n    return 0\n```", reasoning, "add")
    assert not kept.recovered_from_reasoning and "return 0" in kept.solution


def test_long_unfenced_reply_is_bounded():
    reply = "def add(a, b):\n    return a + b\n" + "x = 1\n" * 20000
    started = time.monotonic()
    extracted = extract_solution(reply, None, "add")
    assert time.monotonic() - started < 10
    assert "def add" in extracted.solution
