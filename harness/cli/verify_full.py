"""CLI verb `verify-full PROFILE|URL` (issue 15; being written)."""

from __future__ import annotations


def register(verbs, common) -> None:
    """Add the `verify-full` verb."""
