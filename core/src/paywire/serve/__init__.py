"""Running paywire as a service: the webhook endpoint, the Janitor (reconciliation on the outcome
model's schedule), health and metrics. `paywire.serve.server` and `paywire.serve.metrics` need
`paywire[server]` (uvicorn, prometheus-client); the Janitor needs nothing more than the core."""

from paywire.serve.janitor import Backoff, Janitor, PassReport

__all__ = ["Backoff", "Janitor", "PassReport"]
