"""Run the tasklog command with and without --json; print normal forms (expected lines live in the assert)."""

import json
import os
import subprocess
import sys
import tempfile

tasks = tempfile.NamedTemporaryFile("w", suffix=".tasks", delete=False)
tasks.write("[dropped] Old idea\n[doing] Draft\n# comment\n[doing] Review\n")
tasks.close()


def run(*args):
    result = subprocess.run([sys.executable, "-m", "tasklog", *args], capture_output=True, text=True,
                            cwd=os.getcwd(), timeout=20)
    return result.returncode, result.stdout


for args in (("tests/data/sample.tasks", "--json"), (tasks.name, "--json"),
             ("--json", "tests/data/sample.tasks", "--hide-empty")):
    code, out = run(*args)
    try:
        shown = json.dumps(json.loads(out), sort_keys=True)
    except ValueError:
        shown = f"not JSON: {out[:80]!r}"
    print(" ".join(a if a != tasks.name else "other.tasks" for a in args), code, shown)
code, out = run(tasks.name)
print("table", code, out.split())
os.unlink(tasks.name)
