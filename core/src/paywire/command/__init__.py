"""Commands: the gateway command pipeline, the command pool, and command results."""

from paywire.command.context import CommandContext
from paywire.command.gateway_command import Command, GatewayCommand
from paywire.command.pool import CommandPool
from paywire.command.result import CommandResult, ProviderState

__all__ = ["Command", "CommandContext", "CommandPool", "CommandResult", "GatewayCommand", "ProviderState"]
