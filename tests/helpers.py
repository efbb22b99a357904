"""Small helpers for tests that run actions."""

from typing import Any

from runtime.limits import Limits
from runtime.sandbox import ExecutionResult, compile_action, execute


def handler_source(body: str, *, prelude: str = "", handler: str = "onExecutePostLogin") -> str:
    """An action whose `handler` runs `body` (with `event` and `api` in scope)."""
    return f"{prelude}\nexports.{handler} = async (event, api) => {{\n{body}\n}};\n"


def run(
    body: str,
    event: dict[str, Any] | None = None,
    *,
    prelude: str = "",
    handler: str = "onExecutePostLogin",
    limits: Limits | None = None,
    **kwargs: Any,
) -> ExecutionResult:
    """Compile and run a handler body in a fresh sandbox."""
    action = compile_action(handler_source(body, prelude=prelude, handler=handler))
    return execute(action, handler, event if event is not None else {}, limits=limits, **kwargs)


def logged(result: ExecutionResult) -> list[str]:
    """The console messages of a result."""
    return [entry["message"] for entry in result.logs]
