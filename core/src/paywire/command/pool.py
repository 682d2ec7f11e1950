"""The command pool (Magento's CommandPool): a gateway's commands by code."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from paywire.command.gateway_command import Command
from paywire.errors import UnsupportedOperation

__all__ = ["CommandPool"]


class CommandPool(Mapping[str, Command]):
    """An immutable mapping of command code to command; an unknown code names what is offered."""

    def __init__(self, commands: Mapping[str, Command], *, gateway: str = "") -> None:
        self._commands = MappingProxyType(dict(commands))
        self._gateway = gateway

    def __getitem__(self, code: str) -> Command:
        try:
            return self._commands[code]
        except KeyError:
            offered = ", ".join(sorted(self._commands)) or "none"
            raise UnsupportedOperation(
                f"gateway {self._gateway!r} has no command {code!r}; it offers: {offered}",
                provider=self._gateway or None,
                code="unsupported_command",
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._commands)

    def __len__(self) -> int:
        return len(self._commands)

    def __repr__(self) -> str:
        return f"CommandPool({self._gateway!r}: {', '.join(self._commands)})"
