"""The keys of a command's steps: one per step and command key, within the provider's limit, and
in paywire's own key space, which the payment service refuses to callers."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paywire import InvalidRequest, step_key
from paywire.service.inputs import require_callers_key, require_key
from paywire.step_keys import OWN_KEYS

KEYS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=300).filter(str.strip)
STEPS = st.sampled_from(["customer", "attach", "token"])


@given(KEYS, STEPS, KEYS, STEPS)
@example("vault-1", "customer", "vault-1", "attach")
@example("a:attach", "customer", "a", "attach")  # the earlier form's `{key}:{step}` read another way
@example("k" * 250, "customer", "k" * 251, "customer")  # both past the limit: hashed
def test_two_steps_or_two_keys_never_share_a_step_key(key: str, step: str, other: str, other_step: str) -> None:
    one, two = step_key(key, step, 255), step_key(other, other_step, 255)
    assert (one == two) == ((key, step) == (other, other_step))


@given(KEYS, STEPS, st.integers(min_value=90, max_value=300))
def test_a_step_key_fits_the_limit_and_no_caller_may_give_it(key: str, step: str, limit: int) -> None:
    made = step_key(key, step, limit)
    assert made.startswith(OWN_KEYS) and len(made) <= limit
    assert made == f"paywire:{step}:{key}" or len(f"paywire:{step}:{key}") > limit
    require_key(made)  # a key a header carries
    with pytest.raises(InvalidRequest) as refused:
        require_callers_key(made)
    assert (refused.value.code, refused.value.param) == ("idempotency_key_reserved", "idempotency_key")


@given(KEYS)
def test_a_caller_key_outside_paywires_space_is_taken(key: str) -> None:
    if not key.startswith(OWN_KEYS):
        require_callers_key(key)


@pytest.mark.parametrize("step", ["", "a:b", "a#b"])
def test_a_step_name_that_would_make_two_steps_keys_alike_is_refused(step: str) -> None:
    with pytest.raises(ValueError, match="without ':' or '#'"):
        step_key("vault-1", step, 255)
