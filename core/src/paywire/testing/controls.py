"""The emulator controls the contract kit needs: count requests and inject faults.

`EmulatorApp` (and so every emulator built on it) satisfies `EmulatorControls` as it is. An
emulator running in another process is driven through its `/_paywire/` control endpoints with
`RemoteEmulator`.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from paywire.testing.emulator import Fault

__all__ = ["EmulatorControls", "RemoteEmulator"]


@runtime_checkable
class EmulatorControls(Protocol):
    """What the kit asks of an emulator (or a fake standing in for the provider).

    `calls` lists the requests that reached the provider's logic, as (method, path), so the kit
    can tell that a refused operation sent nothing.
    """

    @property
    def calls(self) -> Sequence[tuple[str, str]]: ...

    def inject(self, fault: Fault) -> None: ...

    def clear_faults(self) -> None:
        """Remove every fault and let any request a "hold" fault parked be answered."""
        ...


class RemoteEmulator:
    """`EmulatorControls` for an emulator served by another process, at `url`."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def __repr__(self) -> str:
        return f"RemoteEmulator({self.url!r})"

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - a loopback emulator's control endpoint
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    @property
    def calls(self) -> Sequence[tuple[str, str]]:
        return [(method, path) for method, path in self._call("GET", "/_paywire/calls")["calls"]]

    def inject(self, fault: Fault) -> None:
        self._call("POST", "/_paywire/faults", attrs.asdict(fault))

    def clear_faults(self) -> None:
        self._call("DELETE", "/_paywire/faults")
