# Exercises app/config.py from the current directory; one JSON line per case.
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.getcwd(), "app"))

import config  # noqa: E402

CASES = [
    ("nothing", "", {}),
    ("file timeout", '{"timeout": 60}', {}),
    ("file and env", '{"timeout": 60, "port": 9000}', {"APP_PORT": "9100"}),
    ("extra keys", '{"proxy": "http://proxy:3128", "log_level": "debug"}', {"HOME": "/tmp"}),
    ("env wins", '{"log_level": "debug", "retries": 5}', {"APP_LOG_LEVEL": "warn"}),
    ("blank file", "  \n", {"APP_HOST": "0.0.0.0"}),
]
for label, text, env in CASES:
    try:
        out = config.load_config(text, env)
    except Exception as exc:
        out = "raised " + type(exc).__name__
    print(label, json.dumps(out, sort_keys=True))
