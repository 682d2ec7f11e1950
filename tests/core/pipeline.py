"""A minimal gateway command for exercising the pipeline against a real loopback server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire import (
    JSON,
    CommandContext,
    ErrorMapper,
    GatewayCommand,
    HandlerChain,
    Plugins,
    Response,
    Result,
    Retry,
    Subject,
    TransferFactory,
    ValidatorComposite,
)
from paywire.http.client import Client, Urllib3Client
from paywire.http.transfer import Timeout


def answered_ok(subject: Subject, response: Response) -> Result:
    if response.ok:
        return Result.success()
    error = response.data.get("error", {}) if isinstance(response.data, Mapping) else {}
    return Result(False, (error.get("message", f"HTTP {response.status}"),), tuple(c for c in [error.get("code")] if c))


def command(base_url: str, method: str = "POST", path: str = "/pay", read_timeout: float = 5.0,
            **factory: Any) -> GatewayCommand:
    """`factory`: the transfer factory's other fields (the key goes in Idempotency-Key unless told)."""
    return GatewayCommand(
        builder=[lambda s: {"amount": s.amount.minor if s.amount else 0}],
        transfer_factory=TransferFactory(
            base_url, method, path, converter=JSON, timeout=Timeout(connect=2.0, read=read_timeout),
            **{"idempotency_header": "Idempotency-Key", **factory},
        ),
        validator=ValidatorComposite([answered_ok]),
        error_mapper=ErrorMapper("test"),
        handler=HandlerChain([lambda s, r: {"reference": str(r.status), "raw": r.data}]),
    )


def context(client: Client | None = None, retry: Retry | None = None, plugins: Plugins | None = None) -> CommandContext:
    return CommandContext("test", "test", "pay", client or Urllib3Client(), plugins or Plugins(),
                          retry or Retry(backoff_factor=0))


def run(cmd: GatewayCommand, subject: Subject, **kwargs: Any) -> Any:
    return cmd.execute(subject, context(**kwargs))
