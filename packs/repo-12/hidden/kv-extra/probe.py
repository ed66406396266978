"""Exercise kvserve.store and the routing; print one line per case (expected lines live in the assert)."""

import os
import sys

sys.path.insert(0, os.getcwd())  # the check runs in the workspace

from kvserve.server import handle  # noqa: E402
from kvserve.store import Store  # noqa: E402


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


clock = Clock()
store = Store(clock)
for key in ("app:b", "app:a", "my-app:c", "app", "xapp:d", "app:z:app:"):
    store.put(key, key.upper())
store.put("app:tmp", "T", ttl_s=5)
print("keys app:", store.keys("app:"))
print("keys app", store.keys("app"))
print("keys all", store.keys())
print("keys none", store.keys("zzz"))
print("keys exact", store.keys("app:z:app:"))
clock.now = 5
print("keys after expiry", store.keys("app:"))
print("get", store.get("app:a"), store.get("app:tmp"))
print("route", handle(store, "GET", "/kv?prefix=app:"))
print("route empty", handle(store, "GET", "/kv?prefix=nothing"))
