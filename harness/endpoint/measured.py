"""The header of every measurement of a server (throughput, stress, sweep, soak).

Each result file says what it is, when it was taken, of which endpoint and model, and what kind of
server answered, in the same fields, so the report and a reader of the JSON find them alike.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ServerKind = Literal["llama.cpp", "openai-compatible"]


class Measured(BaseModel):
    """Fields every server measurement starts with; each result narrows ``kind`` to its own name."""

    kind: str
    schema_version: int = 1
    created_at: str = Field(description="ISO 8601, UTC")
    endpoint: str = Field(description="display URL, credentials redacted")
    model: str
    profile: str | None = None
    server_kind: ServerKind
