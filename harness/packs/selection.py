"""Turning a short selection ("quick", "medium", "full", "reasoning", or "pack-id,pack-id/scenario-id") into
`packs run` flags.

Used by the callers that run the packs as a subprocess (all-bench, baseline capture).
"""

from __future__ import annotations

MODES = ("quick", "medium", "full", "reasoning")


def selection_args(spec: str) -> list[str]:
    """`packs run` flags selecting what spec names."""
    if spec in MODES:
        return [f"--{spec}"]
    return [word for item in spec.split(",") if item
            for word in (("--scenario" if "/" in item else "--pack"), item)]
