"""Validators check a provider's answer and say what is wrong with it."""

from paywire.validator.composite import ValidatorComposite
from paywire.validator.result import Result, Validator

__all__ = ["Result", "Validator", "ValidatorComposite"]
