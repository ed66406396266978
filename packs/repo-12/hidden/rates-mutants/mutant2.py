"""The price of a parcel by zone and weight."""

import math

# Pence for the first kilogram, then for each further kilogram, by zone.
BASE_PENCE = {1: 450, 2: 520, 3: 610, 4: 980}
PER_KG_PENCE = {1: 80, 2: 95, 3: 120, 4: 210}
EXPRESS_FACTOR = 1.5
MAX_KG = 30


def price_pence(zone: int, weight_kg: float, express: bool = False) -> int:
    """Price in pence of a parcel of `weight_kg` to `zone`.

    The first kilogram costs the zone's base price; every further kilogram, or part of a
    kilogram, adds the zone's per-kilogram price. Express multiplies the total by 1.5,
    rounded up to a whole penny. Raises ValueError for an unknown zone and for a weight
    of 0 kg or less or of more than 30 kg.
    """
    if zone not in BASE_PENCE:
        raise ValueError(f"unknown zone {zone}")
    if weight_kg <= 0 or weight_kg > MAX_KG:
        raise ValueError(f"weight must be more than 0 and at most {MAX_KG} kg, got {weight_kg}")
    extra_kg = max(0, int(weight_kg - 1))
    pence = BASE_PENCE[zone] + extra_kg * PER_KG_PENCE[zone]
    if express:
        pence = math.ceil(pence * EXPRESS_FACTOR)
    return pence


def format_pence(pence: int) -> str:
    """Pence as pounds for display: 1205 -> "£12.05"."""
    return f"£{pence // 100}.{pence % 100:02d}"
