"""What the shop and the café sell: item ids, prices, popularity, stock-out rates."""

from __future__ import annotations

import numpy as np

from sawubona.demo.retail import Catalogue

_CONSUMABLES = (
    "coffee_beans",
    "green_tea",
    "dog_food",
    "cat_food",
    "cat_litter",
    "printer_ink",
    "razor_blades",
    "vitamins",
    "shampoo",
    "baby_wipes",
    "oat_milk",
    "protein_powder",
    "contact_lenses",
    "dishwasher_tabs",
    "bird_seed",
)


_DURABLES = (
    "phone_case",
    "usb_cable",
    "headphones",
    "desk_lamp",
    "yoga_mat",
    "water_bottle",
    "backpack",
    "notebook",
    "kettle",
    "toaster",
    "frying_pan",
    "bath_towel",
    "bed_sheets",
    "trainers",
    "rain_jacket",
    "board_game",
    "jigsaw",
    "plant_pot",
    "candle",
    "picture_frame",
    "umbrella",
    "socks",
    "scarf",
    "sunglasses",
    "wallet",
)


_VARIANTS = (
    "small",
    "large",
    "250g",
    "1kg",
    "x6",
    "x12",
    "blue",
    "black",
    "red",
    "eco",
    "deluxe",
    "mini",
)


def _shop_catalogue() -> Catalogue:
    rng = np.random.default_rng(20250630)  # the catalogue is the same in every world
    nouns = _CONSUMABLES + _DURABLES
    ids = tuple(f"{n}_{v}" for n in nouns for v in _VARIANTS)
    k = len(ids)
    base = np.r_[rng.uniform(4, 30, len(_CONSUMABLES)), rng.uniform(8, 80, len(_DURABLES))]
    price = np.round(np.repeat(base, len(_VARIANTS)) * rng.uniform(0.7, 1.4, k), 2) - 0.01
    rank = rng.permutation(k)
    popularity = 1.0 / (rank + 5.0) ** 1.1
    stockout = np.where(rng.random(k) < 0.1, 0.06, 0.015)
    core_ok = np.repeat(np.arange(len(nouns)) < len(_CONSUMABLES), len(_VARIANTS))
    return Catalogue(ids, np.maximum(price, 0.99), popularity, stockout, core_ok)


SHOP_CATALOGUE = _shop_catalogue()


MENU = (  # item, price, popularity, stock-out rate, can be a core item
    ("flat_white", 3.20, 10, 0.004, True),
    ("cappuccino", 3.10, 8, 0.004, True),
    ("latte", 3.20, 8, 0.004, True),
    ("espresso", 2.20, 4, 0.004, True),
    ("americano", 2.60, 6, 0.004, True),
    ("orange_juice", 3.50, 5, 0.07, True),
    ("green_juice", 4.20, 2, 0.05, True),
    ("tea", 2.00, 4, 0.004, True),
    ("hot_chocolate", 3.30, 3, 0.006, True),
    ("iced_latte", 3.60, 3, 0.01, True),
    ("croissant", 2.40, 6, 0.04, False),
    ("pain_au_chocolat", 2.60, 4, 0.04, False),
    ("banana_bread", 2.90, 3, 0.03, False),
    ("porridge", 3.80, 2, 0.01, False),
    ("avocado_toast", 6.50, 2, 0.02, False),
    ("bacon_roll", 4.50, 2, 0.02, False),
    ("granola_bowl", 4.80, 1, 0.01, False),
    ("muffin", 2.50, 2, 0.02, False),
)


CAFE_MENU = Catalogue(
    tuple(m[0] for m in MENU),
    np.array([m[1] for m in MENU]),
    np.array([m[2] for m in MENU], dtype=float),
    np.array([m[3] for m in MENU]),
    np.array([m[4] for m in MENU]),
)
