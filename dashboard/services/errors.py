"""Domain errors: services raise these; pages and routes turn them into messages."""


class DomainError(Exception):
    """Base class; ``str(error)`` is a message fit to show the user."""


class NotFound(DomainError):
    pass


class ValidationFailed(DomainError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in errors.items()))
        self.errors = errors


class NotAllowed(DomainError):
    pass
