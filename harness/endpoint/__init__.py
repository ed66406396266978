"""Talking to a model endpoint: the one client (keys, retries, deadlines, both wire formats), its typed
replies, and what is measured through it (verify, throughput, VRAM telemetry)."""
