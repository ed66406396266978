"""Quantities in free text: a number and the unit written next to it.

Used where a number alone is not the answer ("18 °C" is right, "18 °F" is not). Units are
named by a canonical key; each key lists the spellings that mean it. A spelling that is not
listed is no unit at all (a qualifier such as "apples" or "old"), never a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.packs.verifiers._common import plain_text

UNITS: dict[str, tuple[str, ...]] = {
    "celsius": ("°c", "° c", "degrees c", "degree c", "deg c", "degrees celsius", "degree celsius", "celsius",
                "centigrade", "c", "\u2103"),
    "fahrenheit": ("°f", "° f", "degrees f", "degree f", "deg f", "degrees fahrenheit", "fahrenheit", "f", "\u2109"),
    "kelvin": ("kelvin", "k"),
    "degree": ("°", "degrees", "degree", "deg"),
    "usd": ("us$", "usd", "us dollars", "dollars", "dollar", "bucks", "$"),
    "eur": ("eur", "euros", "euro", "€"),
    "gbp": ("gbp", "pounds sterling", "pounds", "pound", "sterling", "£"),
    "percent": ("%", "percent", "per cent", "pct"),
    "hour": ("hours", "hour", "hrs", "hr", "h"),
    "minute": ("minutes", "minute", "mins", "min"),
    "second": ("seconds", "second", "secs", "sec", "s"),
    "day": ("days", "day", "d"),
    "year": ("years old", "year old", "years", "year", "yrs", "yr", "y/o", "y"),
    "km/h": ("km/h", "km/hr", "km per hour", "kilometres per hour", "kilometers per hour", "kilometre per hour",
             "kilometer per hour", "kmph", "kph", "kmh", "km h^-1"),
    "m/s": ("m/s", "metres per second", "meters per second"),
    "mph": ("mph", "miles per hour", "mi/h"),
    "km": ("km", "kilometres", "kilometers", "kilometre", "kilometer"),
    "mile": ("miles", "mile", "mi"),
    "cm^2": ("cm^2", "cm2", "sq cm", "sq. cm", "square cm", "square centimetres", "square centimeters",
             "square centimetre", "square centimeter"),
    "m^2": ("m^2", "m2", "sq m", "square metres", "square meters"),
    "cm": ("cm", "centimetres", "centimeters", "centimetre", "centimeter"),
    "m": ("m", "metres", "meters", "metre", "meter"),
    "litre": ("litres", "liters", "litre", "liter", "ltr", "lt", "l"),
    "ml": ("ml", "millilitres", "milliliters"),
    "kg": ("kg", "kgs", "kilograms", "kilogram", "kilos", "kilo"),
    "g": ("grams", "gram", "g"),
    "cent": ("cents", "cent", "¢"),
}

# Longest spelling first, so "km/h" is read before "km" and "hours" before "h".
_SPELLINGS = sorted(((s, key) for key, spellings in UNITS.items() for s in spellings), key=lambda p: -len(p[0]))
_PREFIX_UNITS = {"$": "usd", "us$": "usd", "usd": "usd", "€": "eur", "eur": "eur", "£": "gbp", "gbp": "gbp"}
NUMBER_RE = re.compile(r"(?<![\w.\-/:])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\d/])")


@dataclass(frozen=True)
class Quantity:
    """A number found in text and the unit key written with it (None when none is)."""

    value: float
    unit: str | None
    start: int
    end: int


def unit_at_start(text: str) -> tuple[str | None, int]:
    """(unit key, characters used) for a unit spelling at the start of text; (None, 0) if none."""
    lowered = text.casefold()
    for spelling, key in _SPELLINGS:
        if lowered.startswith(spelling):
            rest = lowered[len(spelling):]
            if not spelling[-1].isalpha() or not rest or not rest[0].isalpha():
                return key, len(spelling)
    return None, 0


def same_unit(wanted: str, given: str | None) -> bool:
    """True when given names the wanted unit ("degree" is accepted for a temperature)."""
    return given == wanted or (given == "degree" and wanted in ("celsius", "fahrenheit"))


def quantities(text: str) -> list[Quantity]:
    """Every number in text with the unit after it (or a currency sign/code before it)."""
    plain = plain_text(text)
    found = []
    for match in NUMBER_RE.finditer(plain):
        value = float(match.group(1).replace(",", "") + (match.group(2) or ""))
        after = plain[match.end():]
        unit, _ = unit_at_start(after.lstrip(" ") if after[:1] == " " and after[1:2] != " " else after)
        if unit is None:
            before = plain[max(0, match.start() - 4):match.start()].rstrip().casefold()
            unit = next((key for sign, key in _PREFIX_UNITS.items() if before.endswith(sign)), None)
        found.append(Quantity(value=value, unit=unit, start=match.start(), end=match.end()))
    return found
