"""CLI verb `stress PROFILE|URL` (issue 15; being written)."""

from __future__ import annotations


def register(verbs, common) -> None:
    """Add the `stress` verb."""
