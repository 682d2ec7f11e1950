"""Identifiers, derived idempotency keys and request fingerprints.

A derived key is a pure function of the payment and the operation's place in its history, so
the same retry computes the same key in any process, and the provider can deduplicate it. The
fingerprint is a hash of everything that makes an operation what it is: the same key with the
same fingerprint is a replay, with another fingerprint a conflict.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from hashlib import sha256 as _sha256
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any

from paywire.ledger.model import canonical_json

__all__ = ["derived_key", "fingerprint", "new_id", "same_operation"]


def new_id(prefix: str) -> str:
    """An identifier such as `pay_0193a2b4c5d6e7f8091a2b3c4d`: the creation time in milliseconds,
    then 80 random bits. Unguessable, so ids can be shown to buyers; and time-ordered, so new rows
    land on the same index pages instead of dirtying random ones on every commit.

    An id never holds twelve digits in a row, so no id (nor a key derived from one) can look like
    a card number to the guard that refuses card numbers on the wire (about 1 draw in 700 would).
    """
    while True:
        # The milliseconds as six bytes and the random ten, in one hex text: what `{ms:012x}`
        # followed by `token_hex(10)` writes, without parsing a format spec for every id (six bytes
        # hold the milliseconds until the year 10889).
        identifier = f"{prefix}_{((time.time_ns() // 1_000_000).to_bytes(6, 'big') + os.urandom(10)).hex()}"
        if _RUN not in identifier.encode().translate(_DIGITS):
            return identifier


# Every digit as "1" and anything else as "0": a run of twelve digits is a run of twelve "1"s, a
# translation and a substring search in C, several times cheaper than a regular expression's
# search (an id is made for every payment and transaction).
_DIGITS = bytes(49 if chr(code) in "0123456789" else 48 for code in range(256))
_RUN = b"1" * 12


def derived_key(owner: str, kind: str, sequence: int) -> str:
    """The idempotency key of the `sequence`-th `kind` operation on `owner` (a payment id)."""
    return f"paywire-{owner}-{kind}-{sequence}"


def fingerprint(kind: str, method: str, scope: str | None, params: Mapping[str, Any]) -> str:
    """A stable hash of an operation's parameters (`scope`: the payment a follow-up acts on)."""
    if type(kind) is str and type(method) is str and (scope is None or type(scope) is str):
        # The text `canonical_json` writes for the same four keys (in their sorted order), put
        # together here: only the parameters need the encoder's sorting and walking.
        canonical = (f'{{"kind":{_quoted(kind)},"method":{_quoted(method)},"params":{canonical_json(params)},'
                     f'"scope":{"null" if scope is None else _quoted(scope)}}}')
    else:
        canonical = canonical_json({"kind": kind, "method": method, "scope": scope, "params": params})
    return _sha256(canonical.encode()).hexdigest()


# Fields a release added to what its fingerprints cover, which those of earlier releases left
# out: "buyer", a vault's buyer details (from which the provider makes a new customer).
_ADDED_FIELDS = ("buyer",)


def same_operation(recorded: str, fp: str, kind: str, method: str, scope: str | None,
                   params: Mapping[str, Any]) -> bool:
    """Whether `recorded`, a fingerprint the ledger holds, is that of this operation (`fp`, the
    fingerprint of `kind`, `method`, `scope` and `params`). A caller retrying an operation under
    its key after an upgrade replays it, instead of being told that the key was used for
    something else, when the ledger holds its fingerprint in a form an earlier release wrote:

    - without the fields added to fingerprints since (`_ADDED_FIELDS`: a vault's buyer details);
      such a fingerprint cannot tell what those fields were, so it matches whatever they are now;
    - written before fingerprints read any mapping by its items: a mapping other than a dict, and
      a set, written as its str (a release that also left the added fields out)."""
    if recorded == fp:
        return True
    earlier_params = {name: value for name, value in params.items() if name not in _ADDED_FIELDS}
    if len(earlier_params) != len(params) and recorded == fingerprint(kind, method, scope, earlier_params):
        return True
    earlier = json.dumps({"kind": kind, "method": method, "scope": scope, "params": earlier_params}, sort_keys=True,
                         separators=(",", ":"), default=str)
    return recorded == hashlib.sha256(earlier.encode()).hexdigest()
