"""OpenTelemetry tracing for paywire, through its hooks alone.

Installed, it is found through the `paywire` entry-point group like any plugin and traces with
the global tracer provider (`opentelemetry.trace.set_tracer_provider`); `Tracing(provider)`
registered on a `Plugins` traces with another. It proves that a plugin which is not a provider
can observe every command without a change to the core.
"""

from __future__ import annotations

from paywire_opentelemetry.tracing import Tracing

__all__ = ["Tracing", "perform_command", "send_transfer"]

_default = Tracing()

# The entry point registers this module: its hooks are the default `Tracing`'s.
perform_command = _default.perform_command
send_transfer = _default.send_transfer
