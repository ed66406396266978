"""Where the harness's own files live: the checkout it runs from (compose files, images, packs).

Only CLI modules use these; core functions take paths as arguments.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = REPO_ROOT / "compose"
CACHE_DIR = REPO_ROOT / ".cache"
PACKS_DIR = REPO_ROOT / "packs"
REFERENCE_SCORES = REPO_ROOT / "reference-scores.json"
