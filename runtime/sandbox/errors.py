"""What can go wrong when the sandbox compiles or runs an action.

::

    SandboxError                  root of every error this package raises
     +-- ActionError              the action failed; `error_class` names how
     |    +-- ActionSyntaxError     action_syntax: the source was refused
     |    +-- ActionThrew           action_error: an uncaught throw
     |    +-- ActionTimeout         action_timeout: fuel or wall clock spent
     |    +-- ActionMemoryExceeded  action_memory: the memory limit was hit
     |    +-- ActionLimitExceeded   action_limit: output, logs, commands, host calls
     |    +-- ActionIncomplete      action_incomplete: the handler can never finish
     |    +-- ActionProtocolError   action_protocol: the guest's answer was malformed
     +-- PlatformError            platform_error: the platform itself failed

An ActionError is the tenant's to fix; a PlatformError is the operator's.
Messages never contain secrets or platform internals: they are shown to the
tenant and may be shown in a login error.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ActionError",
    "ActionIncomplete",
    "ActionLimitExceeded",
    "ActionMemoryExceeded",
    "ActionProtocolError",
    "ActionSyntaxError",
    "ActionThrew",
    "ActionTimeout",
    "PlatformError",
    "SandboxError",
    "error_from_dict",
]


class SandboxError(Exception):
    """Root of everything the sandbox raises."""

    error_class: ClassVar[str] = "platform_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """The error as results carry it: ``class`` and ``message`` at least."""
        return {"class": self.error_class, "message": self.message}


class PlatformError(SandboxError):
    """The platform failed (engine missing, runtime fault); not the action's doing."""

    error_class = "platform_error"


class ActionError(SandboxError):
    """The action failed; `error_class` says how."""

    error_class = "action_error"


class ActionSyntaxError(ActionError):
    """The source is not a valid action: syntax, encoding, size or handler exports."""

    error_class = "action_syntax"

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line is not None else ""
        return f"{self.message}{where}"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.line is not None:
            out["line"] = self.line
            out["column"] = self.column
        return out


class ActionThrew(ActionError):
    """The action threw and nothing caught it."""

    error_class = "action_error"

    def __init__(
        self,
        message: str,
        *,
        name: str = "Error",
        stack: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.name = name
        self.stack = stack
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(name=self.name, stack=self.stack)
        if self.line is not None:
            out["line"] = self.line
            out["column"] = self.column
        return out


class _LimitError(ActionError):
    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["limit"] = self.limit
        return out


class ActionTimeout(_LimitError):
    """The action used all its fuel (`limit` = "fuel") or time (`limit` = "wall_ms")."""

    error_class = "action_timeout"


class ActionMemoryExceeded(_LimitError):
    """The action needed more memory than `memory_bytes` allows."""

    error_class = "action_memory"


class ActionLimitExceeded(_LimitError):
    """The action exceeded a count or size limit, named by `limit`."""

    error_class = "action_limit"


class ActionIncomplete(ActionError):
    """The handler's promise can never settle: nothing left to run, still pending."""

    error_class = "action_incomplete"


class ActionProtocolError(ActionError):
    """The guest answered with something that is not a valid result."""

    error_class = "action_protocol"


_BY_CLASS: dict[str, type[SandboxError]] = {
    cls.error_class: cls
    for cls in (
        ActionSyntaxError,
        ActionThrew,
        ActionIncomplete,
        ActionProtocolError,
        PlatformError,
    )
}
_LIMIT_CLASSES: dict[str, type[_LimitError]] = {
    cls.error_class: cls for cls in (ActionTimeout, ActionMemoryExceeded, ActionLimitExceeded)
}


def error_from_dict(data: dict[str, Any]) -> SandboxError:
    """Rebuild an error from :meth:`SandboxError.to_dict` (e.g. across processes)."""
    cls_name = str(data.get("class", "platform_error"))
    message = str(data.get("message", ""))
    line = data.get("line")
    column = data.get("column")
    if cls_name in _LIMIT_CLASSES:
        return _LIMIT_CLASSES[cls_name](message, limit=str(data.get("limit", "")))
    if cls_name == "action_syntax":
        return ActionSyntaxError(message, line=line, column=column)
    if cls_name == "action_error":
        return ActionThrew(
            message,
            name=str(data.get("name", "Error")),
            stack=str(data.get("stack", "")),
            line=line,
            column=column,
        )
    return _BY_CLASS.get(cls_name, PlatformError)(message)
