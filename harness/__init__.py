"""benchwright: a reproducible, Docker-native harness for LLM servers (package `harness`)."""

__version__ = "0.1.0"
