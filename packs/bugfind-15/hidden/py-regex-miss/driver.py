# Exercises accesslog.py from the current directory; one JSON line per case.
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.getcwd())

import accesslog  # noqa: E402

LINES = [
    '10.0.0.5 - - [12/Mar/2024:10:01:00 +0000] "GET /index.html HTTP/1.1" 200 5120',
    '10.0.0.5 - - [12/Mar/2024:10:01:02 +0000] "GET /logo.png HTTP/1.1" 304 -',
    '192.168.1.20 - bob [12/Mar/2024:10:05:00 +0000] "DELETE /api/item/7 HTTP/1.1" 204 -\n',
    '10.0.0.7 - - [12/Mar/2024:10:02:11 +0000] "GET /missing HTTP/1.1" 404 312   ',
    '# comment line',
    '',
    'garbage without structure',
    '10.0.0.8 - - [12/Mar/2024:10:03:00 +0000] "GET /x HTTP/1.1" 200',
]
for line in LINES:
    try:
        out = accesslog.parse_line(line)
    except Exception as exc:
        out = "raised " + type(exc).__name__
    print(json.dumps(out, sort_keys=True))

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "access.log"), encoding="utf-8") as fh:
    log = fh.read().splitlines(keepends=True)
for label, lines in (("sample", LINES), ("hidden log", log), ("empty", [])):
    try:
        out = accesslog.summarize(lines)
    except Exception as exc:
        out = "raised " + type(exc).__name__
    print(label, json.dumps(out, sort_keys=True))
