# Runs march_report.sql (from the current directory) with the sqlite3 CLI against several databases:
# the workspace's sales.sql and the extra dumps next to this driver.
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
QUERY = os.path.join(os.getcwd(), "march_report.sql")
CASES = [("sales", os.path.join(os.getcwd(), "sales.sql"))] + [
    (name[:-4], os.path.join(HERE, name)) for name in sorted(os.listdir(HERE)) if name.endswith(".sql")
]

tmp = tempfile.mkdtemp(prefix="bw-sql-")
try:
    for label, dump in CASES:
        db = os.path.join(tmp, label + ".db")
        with open(dump, "rb") as fh:
            subprocess.run(["sqlite3", "-batch", db], stdin=fh, check=True, capture_output=True)
        with open(QUERY, "rb") as fh:
            res = subprocess.run(["sqlite3", "-batch", db], stdin=fh, capture_output=True, timeout=5)
        print("== " + label + (" (error)" if res.returncode else ""))
        for line in res.stdout.decode("utf-8", "replace").splitlines():
            print(line)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
