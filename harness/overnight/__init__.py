"""Unattended runs: every step of every profile as its own process, the manifest, provenance and
the outcome records the steps hand each other."""
