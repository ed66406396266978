"""Where the harness's own files live: the checkout it runs from (compose files, images, packs, data).

Only CLI modules use these; core functions take paths as arguments.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = REPO_ROOT / "compose"
CACHE_DIR = REPO_ROOT / ".cache"
PACKS_DIR = REPO_ROOT / "packs"
REFERENCE_SCORES = REPO_ROOT / "reference-scores.json"


def default_data_dir() -> Path:
    """EvalPlus datasets: $BENCHWRIGHT_DATA_DIR, else ./data (where `make data` puts them),
    else a shared data folder beside the checkout (how offline machines are provisioned)."""
    if os.environ.get("BENCHWRIGHT_DATA_DIR"):
        return Path(os.environ["BENCHWRIGHT_DATA_DIR"])
    local, shared = REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"
    return shared if not local.is_dir() and shared.is_dir() else local
