"""Exceptions raised by agent connections."""


class AgentError(Exception):
    """Base class for every agent failure."""


class AgentAuthError(AgentError):
    """The server closed the agent socket instead of accepting its token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"agent failed to authenticate: {self.reason}"
