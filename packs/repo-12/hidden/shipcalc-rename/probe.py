"""Check the zone_of -> zone_for_postcode rename; one line per fact (expected lines live in the assert)."""

import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.getcwd(), "src"))

import shipcalc  # noqa: E402
from shipcalc import zones  # noqa: E402


def call(function):
    """Call `function` (a lambda, so even the attribute lookup happens here) and record its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = function()
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    return value, deprecations


value, warned = call(lambda: zones.zone_for_postcode("ze1 0aa"))
print("new name", value, "warns" if warned else "silent")
value, warned = call(lambda: zones.zone_of("ze1 0aa"))
print("old name", value, "warns" if warned else "silent")
print("warning names the new function", any("zone_for_postcode" in str(w.message) for w in warned))
if sys.argv[1:] == ["stacklevel"]:  # a separate, optional check
    print("warning points at the caller", bool(warned) and all(w.filename == __file__ for w in warned))
    sys.exit(0)
exports, _ = call(lambda: (shipcalc.zone_for_postcode is zones.zone_for_postcode, callable(shipcalc.zone_of)))
print("package exports", *exports)
q, warned = call(lambda: shipcalc.quote("KW1 4YT", 1.5, (10, 10, 10)))
print("quote", q.zone, q.pence, "warns" if warned else "silent")
