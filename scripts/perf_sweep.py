"""How much the sweep's load generator itself costs on this machine, and where it stops keeping up.

Drives the instant in-process server (harness.endpoint.instant) at several concurrencies and
chunk counts and prints the client's own TTFT/E2E percentiles and the most req/s it drove, so a
sweep's figures can be read against that floor (a real server at 1/10 of these rates is measured
with little distortion).

    python scripts/perf_sweep.py [--concurrency 1,4,16] [--chunks 16,128] [--requests 200]
"""

from __future__ import annotations

import argparse

from tabulate import tabulate

from harness.endpoint.sweep import measure_client_overhead


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=_ints, default=[1, 4, 16])
    parser.add_argument("--chunks", type=_ints, default=[16, 128])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    rows = []
    for chunks in args.chunks:
        for k in args.concurrency:
            o = measure_client_overhead(k, args.requests, chunks)
            rows.append([k, chunks, o.errors, f"{o.ttft_ms.p50:.2f}", f"{o.ttft_ms.p99:.2f}", f"{o.e2e_ms.p50:.2f}",
                         f"{o.e2e_ms.p99:.2f}", f"{o.request_tps:.0f}", f"{o.output_tps:.0f}"])
    print(tabulate(rows, headers=["streams", "chunks", "err", "ttft p50 ms", "ttft p99 ms", "e2e p50 ms",
                                  "e2e p99 ms", "req/s", "chunks/s"], disable_numparse=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
