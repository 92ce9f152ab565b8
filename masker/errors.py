"""Every exception the project raises on purpose, in one place.

Their messages are safe to show a user or an API client: never card data.
"""


class UserError(Exception):
    """A problem with the user's input or configuration; shown as one line."""


class CallEnded(RuntimeError):
    """The call has ended: nothing more can be captured on it."""


class CaptureConflict(RuntimeError):
    """A capture is already running (double start) or none is running (restart/cancel)."""


class ApiError(Exception):
    """An API request the client can correct: HTTP status, stable code, human message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
