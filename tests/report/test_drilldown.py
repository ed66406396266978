"""The HTML report opens any scenario (prompt, reply, reasoning, tool calls, verdict, latency,
tokens), collapsed by default, with model text escaped and long texts cut; the markdown stays a summary."""

from __future__ import annotations

import html
from html.parser import HTMLParser

from harness.report.build import SHORT_LIMIT_CHARS, TEXT_LIMIT_CHARS, build_report
from harness.report.render import render_html, render_markdown
from tests.conftest import REPO_ROOT
from tests.report.fixture import PROFILE, read_json, write_json

REFERENCES = REPO_ROOT / "reference-scores.json"
HOSTILE_REPLY = "It is 3°C in Oslo.<script>alert('reply')</script></details></div></details><details open><b>x"
HOSTILE_REASONING = "thinking </pre><img src=x onerror=alert(1)> then <!-- done"


def _rich(run_dir) -> dict:
    """PROFILE's first scenario with a conversation, tools, tool calls, reasoning, checks and a retried request."""
    path = run_dir / PROFILE / "packs.json"
    data = read_json(path)
    result = data["packs"][0]["scenarios"][0]
    result["scenario"].update(
        messages=[{"role": "system", "content": "You are a weather bot."},
                  {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"},
                                               {"type": "text", "text": "In Celsius."}]}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}])
    result["reply"] = {
        "content": HOSTILE_REPLY, "raw_content": HOSTILE_REPLY, "reasoning": HOSTILE_REASONING,
        "content_source": "content", "finish_reason": "stop", "turns": 3,
        "tool_calls": [{"turn": 1, "name": "get_weather", "arguments": {"city": "Oslo"}, "result": {"temp_c": 3}},
                       {"turn": 2, "name": "no_such_tool", "arguments": "{bad", "arguments_valid_json": False,
                        "error": "unknown tool no_such_tool"}]}
    result["checks"] = [{"name": "called get_weather", "ok": True, "detail": ""},
                        {"name": "mentions the temperature", "ok": False, "detail": "said <b>nothing</b> useful"}]
    result["exchanges"] = [{"request": {"model": "m"}, "error": "HTTP 503: <html>busy</html>", "latency_ms": 5.0}]
    result.update(retries=1, prompt_tokens=123, completion_tokens=45, latency_ms=2345.0)
    write_json(path, data)
    return result


def _scenario_html(page: str, anchor: str) -> str:
    """One scenario's body: from its anchor to the end of its <details> (model text cannot end it early)."""
    return page.partition(f'id="{html.escape(anchor)}"')[2].partition("</div></details>")[0]


class _Tags(HTMLParser):
    """The tags a browser would build, and whether every <details> closes where it should."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.open_details: list[dict] = []
        self.details: list[dict] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "details":
            self.open_details.append(dict(attrs))
            self.details.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag == "details":
            self.open_details.pop()


def test_every_scenario_has_a_collapsed_drilldown(run_dir):
    packs = read_json(run_dir / PROFILE / "packs.json")
    page = render_html(build_report(run_dir, REFERENCES))
    parser = _Tags()
    parser.feed(page)
    assert parser.open_details == []  # every <details> closed
    assert not any("open" in attrs for attrs in parser.details)  # collapsed by default
    scenarios = [s for p in packs["packs"] for s in p["scenarios"]]
    assert sum(a.get("class") == "sc" for a in parser.details) == len(scenarios)
    assert sum(a.get("class") == "pack" for a in parser.details) == len(packs["packs"])
    for s in scenarios:
        anchor = f"s:{PROFILE}/{s['pack_id']}/{s['scenario_id']}"
        summary = page.partition(f'id="{anchor}"')[0].rpartition("<summary>")[2]
        assert f"{s['status']}</span> {s['scenario_id']} · score {s['score']:g} · {s['failure_mode']}" in summary
        assert f"{s['latency_ms'] / 1000:.2f} s · {s['prompt_tokens']}+{s['completion_tokens']} tokens" in summary


def test_a_scenario_shows_prompt_reply_reasoning_tool_calls_and_verdict(run_dir):
    result = _rich(run_dir)
    page = render_html(build_report(run_dir, REFERENCES))
    body = html.unescape(_scenario_html(page, f"s:{PROFILE}/{result['pack_id']}/{result['scenario_id']}"))
    for text in ("system:", "You are a weather bot.", "user:", "Weather in Oslo?\nIn Celsius.",
                 "Tools offered: get_weather", HOSTILE_REPLY, HOSTILE_REASONING,
                 "turn 1: <code>get_weather</code><pre>{\"city\": \"Oslo\"}</pre>result:<pre>{\"temp_c\": 3}</pre>",
                 "turn 2: <code>no_such_tool</code><pre>{bad</pre><span class=\"fail\">error</span>:"
                 "<pre>unknown tool no_such_tool</pre>",
                 "✓ called get_weather", "✗ mentions the temperature — said <b>nothing</b> useful",
                 f"{result['status']}</span>, score {result['score']:g}, {result['failure_mode']}",
                 "Request error: HTTP 503: <html>busy</html>", "latency 2.35 s of a 60 s budget",
                 "1 retried request(s)", "123 prompt + 45 completion tokens", "finish stop"):
        assert text in body, text


def test_model_text_renders_as_text_never_as_markup(run_dir):
    result = _rich(run_dir)
    page = render_html(build_report(run_dir, REFERENCES))
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags and "b" not in parser.tags
    assert parser.open_details == [] and not any("open" in attrs for attrs in parser.details)
    assert page.count("<details") == page.count("</details>") == len(parser.details)
    assert "&lt;script&gt;alert(&#39;reply&#39;)&lt;/script&gt;&lt;/details&gt;" in page
    assert "&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;" in page and "<!-- done" not in page
    body = _scenario_html(page, f"s:{PROFILE}/{result['pack_id']}/{result['scenario_id']}")
    assert "Verdict" in body and "Request error" in body  # the hostile reply did not end the scenario early


def test_long_texts_are_cut_and_say_how_long_they_were(run_dir):
    short = len(render_html(build_report(run_dir, REFERENCES)))
    path = run_dir / PROFILE / "packs.json"
    data = read_json(path)
    reply = data["packs"][0]["scenarios"][0]["reply"]
    reply.update(content="y" * 250_000, reasoning="r" * 90_000,
                 tool_calls=[{"turn": t, "name": "t", "arguments": {"a": "z" * 5000}, "result": "w" * 7000}
                             for t in range(60)])
    write_json(path, data)
    page = render_html(build_report(run_dir, REFERENCES))
    assert f"Cut: {TEXT_LIMIT_CHARS:,} of 250,000 characters shown" in page
    assert f"Cut: {TEXT_LIMIT_CHARS:,} of 90,000 characters shown" in page
    assert f"Cut: {SHORT_LIMIT_CHARS:,} of 7,000 characters shown" in page  # a tool's result
    assert f"Cut: {SHORT_LIMIT_CHARS:,} of 5,009 characters shown" in page  # its arguments, as JSON
    assert "and 20 more tool call(s), in packs.json" in page
    assert "y" * TEXT_LIMIT_CHARS in page and "y" * (TEXT_LIMIT_CHARS + 1) not in page
    assert len(page) - short < 2 * TEXT_LIMIT_CHARS + 40 * 3 * SHORT_LIMIT_CHARS  # bounded, whatever the model said


def test_a_scenario_without_a_reply_shows_its_error(run_dir):
    path = run_dir / PROFILE / "packs.json"
    data = read_json(path)
    result = data["packs"][0]["scenarios"][1]  # a failed one: the pack's counts stay right
    result.update(reply=None, failure_mode="server_error", detail="server answered 503 three times",
                  exchanges=[{"request": {}, "error": "HTTP 503", "latency_ms": 1.0}])
    write_json(path, data)
    page = render_html(build_report(run_dir, REFERENCES))
    body = html.unescape(_scenario_html(page, f"s:{PROFILE}/{result['pack_id']}/{result['scenario_id']}"))
    assert "(no reply text)" in body and "server_error: server answered 503 three times" in body
    assert "Request error: HTTP 503" in body


def test_markdown_stays_a_summary(run_dir):
    _rich(run_dir)
    markdown = render_markdown(build_report(run_dir, REFERENCES))
    assert "Oslo" not in markdown and "weather bot" not in markdown and "onerror" not in markdown
    assert "opens in report.html" in markdown
