"""The sandbox: compile and run actions in fresh WebAssembly instances.

>>> action = compile_action(source, trigger="post-login")
>>> result = execute(action, "onExecutePostLogin", event, secrets={...}, limits=Limits())
>>> result.status, result.commands, result.logs, result.error, result.stats

Only :mod:`runtime.sandbox._wasmtime` touches wasmtime.
"""

from runtime.limits import Limits
from runtime.sandbox.compiler import MAX_SOURCE_BYTES, CompiledAction, compile_action
from runtime.sandbox.errors import (
    ActionError,
    ActionIncomplete,
    ActionLimitExceeded,
    ActionMemoryExceeded,
    ActionProtocolError,
    ActionSyntaxError,
    ActionThrew,
    ActionTimeout,
    PlatformError,
    SandboxError,
)
from runtime.sandbox.executor import ExecutionResult, Stats, Trace, execute

__all__ = [
    "MAX_SOURCE_BYTES",
    "ActionError",
    "ActionIncomplete",
    "ActionLimitExceeded",
    "ActionMemoryExceeded",
    "ActionProtocolError",
    "ActionSyntaxError",
    "ActionThrew",
    "ActionTimeout",
    "CompiledAction",
    "ExecutionResult",
    "Limits",
    "PlatformError",
    "SandboxError",
    "Stats",
    "Trace",
    "compile_action",
    "execute",
]
