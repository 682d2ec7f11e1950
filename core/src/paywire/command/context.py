"""What a command needs at run time besides its subject: who runs it, and with what."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from paywire.http.client import Client
from paywire.http.retry import Retry

if TYPE_CHECKING:
    from paywire.plugins import Plugins


@attrs.frozen
class CommandContext:
    """The gateway (method code), provider, command code, client, retry policy and hooks.

    `rehearsal` runs a command up to the moment its first request would leave, and sends nothing
    (see `Method.rehearse`): whatever would refuse the operation before sending is found before
    the ledger records anything.

    `resent`: the operation was sent before, by an earlier call under the same key, and may have
    taken effect (the payment service resending an unknown outcome). Every answer is then read as
    one after an attempt that may have taken effect (`Response.unsure`): a provider without
    idempotency keys answering "not found" to a deletion the earlier attempt made, say. A
    rehearsal of a resend has both: a command that, resent, only finds what the earlier attempt
    made rehearses that, not a write it never sends.
    """

    gateway: str
    provider: str
    command: str
    client: Client
    plugins: Plugins
    retry: Retry = attrs.field(factory=Retry)
    rehearsal: bool = False
    resent: bool = False

    def for_command(self, command: str) -> CommandContext:
        """The same context for another command of the gateway (composite commands)."""
        return attrs.evolve(self, command=command)
