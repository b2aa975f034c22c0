"""The one error type the API answers with, whichever layer refused or failed."""


class ApiError(Exception):
    """A failure with an HTTP status and a message safe to show to users.

    Messages never carry API keys, stack traces or an upstream's raw body. Before the first
    token an adapter sends it as JSON `{"error": {"type", "message"}}`; after it, the stream
    carries `message` in an `error` chunk.
    """

    def __init__(self, status: int, type: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.retry_after = retry_after

    def body(self) -> dict:
        return {"error": {"type": self.type, "message": self.message}}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
