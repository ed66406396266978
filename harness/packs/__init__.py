"""Quality packs: deterministic, verifier-backed scenarios (see harness/packs/schema.py for the data flow)."""
