"""Hidden check for forge-check: call the model's greet() on inputs the model never sees."""
import sys

sys.path.insert(0, "/workspace")
from greet import greet  # noqa: E402

for name in ("quinn-7", "Ada Lovelace"):
    print(greet(name))
