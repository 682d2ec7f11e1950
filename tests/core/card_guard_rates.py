"""Measure the card-number guard's false-alarm rate (not a test: `python -m tests.core.card_guard_rates`).

Over paywire's own generated ids and derived idempotency keys (the target is 0, and it is 0 by
construction: an id never holds twelve digits in a row), over realistic shop strings of each kind
in `paywire.testing.shop_data`, and, for comparison, over random 16-digit numbers, where a number
in an issued range with a valid check digit is indistinguishable from a card.
"""

from __future__ import annotations

import random
import sys

from paywire.card_numbers import find_card_number
from paywire.service.keys import derived_key, new_id
from paywire.testing.shop_data import SHOP_KINDS, shop_string


def main(ids: int = 1_000_000, per_kind: int = 100_000, seed: int = 11) -> None:
    rng = random.Random(seed)
    flagged = 0
    for index in range(ids):
        kind = index % 3
        identifier = new_id("pay" if kind == 0 else "txn")
        text = derived_key(identifier, rng.choice(["capture", "refund", "void"]), rng.randrange(1, 9)) if kind == 2 else identifier
        flagged += find_card_number(text) is not None
    print(f"paywire ids and derived keys: {flagged} of {ids:,} flagged ({flagged / ids:.6%})")
    total = 0
    for kind in SHOP_KINDS:
        hits = sum(find_card_number(shop_string(rng, kind)) is not None for _ in range(per_kind))
        total += hits
        print(f"shop strings, {kind}: {hits} of {per_kind:,} flagged ({hits / per_kind:.6%})")
    print(f"shop strings, all kinds: {total} of {per_kind * len(SHOP_KINDS):,} flagged")
    hits = sum(find_card_number(f"{rng.randrange(10**16):016d}") is not None for _ in range(per_kind))
    print(f"random 16-digit numbers (not shop data; for comparison): {hits} of {per_kind:,} look like cards "
          f"({hits / per_kind:.3%})")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
