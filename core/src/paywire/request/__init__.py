"""Request builders: pure functions of the subject that return part of the provider request."""

from paywire.request.builder import Builder, BuilderComposite, deep_merge

__all__ = ["Builder", "BuilderComposite", "deep_merge"]
