"""One error type for everything a user can get wrong; the CLI turns it into a clean exit."""

from __future__ import annotations


class AugflowError(Exception):
    """A problem with the user's input or config: names the file, the field and the rule."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 rule: str | None = None) -> None:
        self.file, self.field, self.rule = file, field, rule
        where = ": ".join(p for p in (file, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class ValidationFailed(AugflowError):
    """Great Expectations found failed expectations; the pipeline must stop."""
