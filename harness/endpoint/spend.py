"""The spend guard: a paid API run stops cleanly at a token or dollar limit.

Usage is counted from the replies' own ``usage`` (prompt and completion tokens). When a
ledger file is given (an overnight run gives each profile one in its run directory), every
request's usage is appended to it, fsynced, so the steps of one profile (throughput, packs,
codegen: separate processes) share one budget and a resumed run starts from what was
already spent. The guard refuses a request once the limit is reached; work already done
is kept by the caller's journal.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.errors import EndpointError
from harness.files import append_json_line, complete_lines

# The variable through which an overnight run names each profile's ledger to its step processes.
SPEND_LEDGER_ENV = "BENCHWRIGHT_SPEND_LEDGER"


class SpendLimitReached(EndpointError):
    """The run reached MAX_TOTAL_TOKENS or MAX_COST_USD; finished work is kept."""


class SpendLimits(BaseModel):
    """A profile's limits and prices (USD per million tokens)."""

    model_config = ConfigDict(frozen=True)

    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0

    @property
    def any(self) -> bool:
        return self.max_total_tokens is not None or self.max_cost_usd is not None


class SpendGuard:
    """Counts tokens and cost; thread-safe, optionally persisted to a ledger shared by processes."""

    def __init__(self, limits: SpendLimits, ledger: Path | None = None):
        self.limits, self.ledger = limits, ledger
        self._lock = threading.Lock()
        self.prompt_tokens = self.completion_tokens = 0
        if ledger is not None:
            for line in complete_lines(ledger):
                entry = json.loads(line)
                self.prompt_tokens += int(entry.get("prompt_tokens") or 0)
                self.completion_tokens += int(entry.get("completion_tokens") or 0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> float:
        return (self.prompt_tokens * self.limits.price_in_per_mtok
                + self.completion_tokens * self.limits.price_out_per_mtok) / 1_000_000

    def summary(self) -> str:
        return f"{self.total_tokens} tokens, ${self.cost_usd:.4f}"

    def check(self) -> None:
        """Raise SpendLimitReached when no further request may be sent."""
        limits = self.limits
        with self._lock:
            if limits.max_total_tokens is not None and self.total_tokens >= limits.max_total_tokens:
                reached = f"MAX_TOTAL_TOKENS is {limits.max_total_tokens}"
            elif limits.max_cost_usd is not None and self.cost_usd >= limits.max_cost_usd:
                reached = f"MAX_COST_USD is {limits.max_cost_usd:g}"
            else:
                return
        raise SpendLimitReached(f"stopped by spend guard: {self.summary()} spent, {reached}; finished work is "
                                "kept: raise the limit and run the same command again to resume")

    def add(self, prompt_tokens: int | None, completion_tokens: int | None) -> None:
        """Count one reply's usage (and append it to the ledger)."""
        entry = {"prompt_tokens": int(prompt_tokens or 0), "completion_tokens": int(completion_tokens or 0)}
        with self._lock:
            self.prompt_tokens += entry["prompt_tokens"]
            self.completion_tokens += entry["completion_tokens"]
            if self.ledger is not None:
                self.ledger.parent.mkdir(parents=True, exist_ok=True)
                append_json_line(self.ledger, entry)
