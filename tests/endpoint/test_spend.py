"""The spend guard: counts what replies say they used, shares one budget through its ledger,
and the client refuses to send past the limit."""

from __future__ import annotations

import pytest

from harness.endpoint.client import EndpointClient
from harness.endpoint.spend import SpendGuard, SpendLimitReached, SpendLimits
from tests.doubles.model_server import Reply, ScriptedModelServer

USER = [{"role": "user", "content": "hi"}]


def test_cost_is_priced_per_million_tokens_and_the_limit_is_enforced():
    guard = SpendGuard(SpendLimits(max_cost_usd=0.01, price_in_per_mtok=1.0, price_out_per_mtok=4.0))
    guard.add(2000, 1000)  # 0.002 + 0.004
    guard.check()
    guard.add(1000, 1000)  # + 0.001 + 0.004 = 0.011
    with pytest.raises(SpendLimitReached, match=r"\$0\.0110 spent, MAX_COST_USD is 0\.01"):
        guard.check()


def test_the_ledger_carries_the_count_across_guards_and_a_torn_line_is_dropped(tmp_path):
    ledger = tmp_path / "spend.jsonl"
    limits = SpendLimits(max_total_tokens=100)
    SpendGuard(limits, ledger).add(30, 20)
    with ledger.open("a") as handle:
        handle.write('{"prompt_tokens": 9')  # a kill mid-write
    second = SpendGuard(limits, ledger)
    assert second.total_tokens == 50
    second.add(40, 10)
    with pytest.raises(SpendLimitReached, match="100 tokens"):
        SpendGuard(limits, ledger).check()


def test_the_client_stops_sending_once_the_budget_is_spent():
    guard = SpendGuard(SpendLimits(max_total_tokens=20))
    reply = Reply(content="ok", usage={"prompt_tokens": 6, "completion_tokens": 4})
    with ScriptedModelServer(lambda request: reply) as server, \
            EndpointClient(server.base_url, spend=guard) as client:
        assert client.chat({"messages": USER}).reply is not None
        assert client.stream_chat({"messages": USER}).done
        with pytest.raises(SpendLimitReached):
            client.chat({"messages": USER})
        sent = len(server.requests_to("/v1/chat/completions"))
    assert sent == 2 and guard.total_tokens == 20
