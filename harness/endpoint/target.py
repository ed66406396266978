"""Where a verb sends its requests: a profile (compose-served or an API) or a bare URL.

Every verb that talks to a model takes the same target (a profile id or an http(s) URL) and
the same key option, and gets its client from ``open_client``, so a key-protected server or
an API answers the same way to every verb. The key is read here, at the edge, from the
environment variable a profile or ``--api-key-env`` names; only the variable's name is ever
recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.endpoint.client import EndpointClient, Provider, read_api_key, redact_url
from harness.endpoint.spend import SpendGuard, SpendLimits
from harness.errors import EndpointError
from harness.serving.profiles import Profile


class Target(BaseModel):
    """An endpoint to talk to, and how; carries a key's variable name, never the key."""

    model_config = ConfigDict(frozen=True)

    base_url: str
    provider: Provider = "openai-compatible"
    model_id: str | None = None
    api_key_env: str | None = None
    profile_id: str | None = None
    spend_limits: SpendLimits | None = None

    @property
    def display_url(self) -> str:
        return redact_url(self.base_url)


def looks_like_url(text: str) -> bool:
    """True for anything that is meant as a URL (it has a scheme or a host:port), valid or not."""
    return "://" in text or text.startswith(("localhost:", "127.", "[")) or (
        ":" in text and text.split(":", 1)[1][:1].isdigit())


def target_from_url(url: str, *, provider: Provider = "openai-compatible", model_id: str | None = None,
                    api_key_env: str | None = None) -> Target:
    """A target for a bare URL; anything that is not an http(s) URL is one clear error."""
    if not url.startswith(("http://", "https://")):
        raise EndpointError(f"{redact_url(url)!r}: not an http(s) URL or a profile id "
                            "(a URL looks like http://127.0.0.1:8080 or https://api.example.com/v1)")
    return Target(base_url=url, provider=provider, model_id=model_id, api_key_env=api_key_env)


def target_from_profile(profile: Profile, *, api_key_env: str | None = None, model_id: str | None = None) -> Target:
    """A profile's endpoint: its URL, wire format, model id and key variable (flags override)."""
    limits = SpendLimits(max_total_tokens=profile.max_total_tokens, max_cost_usd=profile.max_cost_usd,
                         price_in_per_mtok=profile.price_in_per_mtok or 0.0,
                         price_out_per_mtok=profile.price_out_per_mtok or 0.0)
    return Target(base_url=profile.base_url, provider=profile.wire_format,
                  model_id=model_id or profile.model_id, api_key_env=api_key_env or profile.api_key_env,
                  profile_id=profile.id, spend_limits=limits if limits.any else None)


def open_client(target: Target, environ: Mapping[str, str], *, spend_ledger: Path | None = None,
                **client_options: Any) -> EndpointClient:
    """The client for a target, its key read from the named variable (a missing one is one line).

    A target with spend limits gets a guard; ``spend_ledger`` shares its count across processes.
    """
    api_key = read_api_key(target.api_key_env, environ)
    spend = SpendGuard(target.spend_limits, spend_ledger) if target.spend_limits else None
    return EndpointClient(target.base_url, provider=target.provider, model_id=target.model_id, api_key=api_key,
                          api_key_env=target.api_key_env, spend=spend, **client_options)
