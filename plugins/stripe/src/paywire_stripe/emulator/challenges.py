"""3-D Secure challenges: the `next_action` an intent waits on, and the page that completes it.

Stripe sends the buyer to `next_action.redirect_to_url.url` (hooks.stripe.com/redirect/authenticate/
src_...); the emulator serves the same path on itself. Visiting it (GET or POST) completes the
challenge; `outcome=fail` fails it. The buyer is then redirected to `return_url` with
`payment_intent`/`setup_intent`, its client secret and `redirect_status`, as Stripe does.

An intent confirmed without a `return_url` has nowhere to send the buyer back to, so Stripe leaves
the challenge to its client SDK: `next_action.type` is `use_stripe_sdk`, and Stripe.js
(`handleNextAction` with the intent's client secret) opens the page named in
`use_stripe_sdk.stripe_js` in a frame; that page answers without a redirect.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from paywire_stripe.emulator.store import Challenge, Context, IntentNotes, StripeObject

__all__ = ["FAIL_OUTCOMES", "PATH", "return_location", "start"]

PATH = "/redirect/authenticate/"
FAIL_OUTCOMES = frozenset(("fail", "failed", "failure", "deny", "denied"))


def start(ctx: Context, kind: str, intent: StripeObject, notes: IntentNotes) -> dict[str, object]:
    """Open a challenge for `intent` and return its `next_action`."""
    store = ctx.store
    challenge = Challenge(
        id=store.new_id("src"),
        secret=store.new_id("src_client_secret"),
        kind=kind,
        intent=intent["id"],
        return_url=notes.return_url,
    )
    store.challenges[challenge.id] = challenge
    notes.challenge = challenge.id
    url = f"{ctx.base_url}{PATH}{challenge.id}?{urlencode({'client_secret': challenge.secret})}"
    if not notes.return_url:
        sdk = {"type": "three_d_secure_redirect", "stripe_js": url, "source": challenge.id}
        return {"type": "use_stripe_sdk", "use_stripe_sdk": sdk}
    return {"type": "redirect_to_url", "redirect_to_url": {"return_url": notes.return_url, "url": url}}


def return_location(challenge: Challenge, intent: StripeObject) -> str | None:
    """Where the buyer goes after the challenge: `return_url` plus what Stripe appends to it."""
    if not challenge.return_url:
        return None
    query = urlencode(
        {
            challenge.kind: intent["id"],
            f"{challenge.kind}_client_secret": intent["client_secret"],
            "redirect_status": challenge.outcome or "failed",
        }
    )
    separator = "&" if urlsplit(challenge.return_url).query else "?"
    return f"{challenge.return_url}{separator}{query}"
