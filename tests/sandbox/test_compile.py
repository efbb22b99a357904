"""Compiling an action: syntax errors with positions, handler checks, refusal of what is not JavaScript."""

import pytest

from runtime.limits import Limits
from runtime.sandbox import (
    MAX_SOURCE_BYTES,
    ActionSyntaxError,
    ActionThrew,
    ActionTimeout,
    CompiledAction,
    PlatformError,
    compile_action,
    execute,
)

GOOD = "exports.onExecutePostLogin = async (event, api) => {};"


def test_a_valid_action_compiles_to_bytecode() -> None:
    """The result names the handlers found, the engine build and the hashes."""
    action = compile_action(GOOD + "\nexports.onContinuePostLogin = async (event, api) => {};")
    assert isinstance(action, CompiledAction)
    assert action.handlers == ("onExecutePostLogin", "onContinuePostLogin")
    assert action.bytecode and len(action.bytecode_sha256) == 64
    assert len(action.build_id) == 64


def test_bytecode_that_differs_from_its_digest_is_refused_before_it_can_run() -> None:
    """Stored or piped bytecode that was altered never becomes an action to execute."""
    wire = compile_action(GOOD).to_wire()
    assert CompiledAction.from_wire(wire).bytecode == wire["bytecode"]
    altered = bytearray(wire["bytecode"])
    altered[len(altered) // 2] ^= 0xFF
    with pytest.raises(PlatformError, match="does not match its digest"):
        CompiledAction.from_wire({**wire, "bytecode": bytes(altered)})


def test_compiling_is_deterministic() -> None:
    """The same source compiles to the same bytecode."""
    assert compile_action(GOOD).bytecode == compile_action(GOOD).bytecode


@pytest.mark.parametrize(
    ("source", "line", "column", "message"),
    [
        ("exports.onExecutePostLogin = async (e, api) => {\n  let x = ;\n};", 2, 11, "unexpected token"),
        ("exports.onExecutePostLogin = async (e, api) => { let x = ; };", 1, 58, "unexpected token"),
        ("exports.onExecutePostLogin = async (e, api) => {\n  return 1\n", 4, 2, "expecting"),
        # As in Node, the first brace closes the CommonJS wrapper; the second is the error.
        ("}}}", 1, 2, "Unexpected token"),
        (
            "exports.onExecutePostLogin = async (e, api) => {\n\n\n  const a = 'unterminated;\n};",
            4,
            13,
            "unexpected end",
        ),
    ],
)
def test_syntax_errors_give_line_and_column(source: str, line: int, column: int, message: str) -> None:
    """A syntax error is an ActionSyntaxError with the line and column in the tenant's source."""
    with pytest.raises(ActionSyntaxError) as caught:
        compile_action(source)
    assert caught.value.error_class == "action_syntax"
    assert (caught.value.line, caught.value.column) == (line, column)
    assert message.lower() in caught.value.message.lower()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not JavaScript"),
        (b"\xff\xfe\x00e\x00x", "not UTF-8"),
        (b"exports.a = 1;\x00", "NUL"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not UTF-8"),
    ],
    ids=["png", "utf16", "nul", "pdf"],
)
def test_files_that_are_not_javascript_are_refused(source: bytes, message: str) -> None:
    """Binary files and other encodings are refused with a message saying so."""
    with pytest.raises(ActionSyntaxError, match=message):
        compile_action(source)


def test_plain_text_is_a_syntax_error() -> None:
    """Text that is not JavaScript fails to parse, with a position."""
    with pytest.raises(ActionSyntaxError) as caught:
        compile_action("This is a README, not an action.\n")
    assert caught.value.line == 1


def test_oversized_sources_are_refused() -> None:
    """Sources over 100 kB are refused before any parsing."""
    with pytest.raises(ActionSyntaxError, match="at most 102,400 bytes"):
        compile_action(GOOD + "//" + "x" * MAX_SOURCE_BYTES)


def test_a_non_async_handler_is_refused_with_the_hosted_products_message() -> None:
    """The handler must be an async function, as the official harness requires."""
    with pytest.raises(ActionSyntaxError) as caught:
        compile_action("exports.onExecutePostLogin = function (event, api) {};")
    assert caught.value.message == (
        'Invalid function signature for the "onExecutePostLogin" handler. '
        'Use "exports.onExecutePostLogin = async function(event, api) { }" as the signature.'
    )


def test_an_action_without_a_handler_for_the_trigger_is_refused() -> None:
    """An action must export at least one of the trigger's handlers."""
    with pytest.raises(ActionSyntaxError, match="exports no post-login handler"):
        compile_action("exports.onExecutePreUserRegistration = async () => {};")


def test_module_exports_assignment_is_supported() -> None:
    """Handlers may be exported by replacing module.exports."""
    action = compile_action("module.exports = { onExecutePostLogin: async (event, api) => { api.access.deny('x') } };")
    assert execute(action, "onExecutePostLogin", {}).commands == [{"type": "deny", "reason": "x"}]


def test_top_level_code_that_throws_is_reported_at_compile_time() -> None:
    """Top-level code runs once when compiling; a throw is reported with its position."""
    with pytest.raises(ActionThrew) as caught:
        compile_action("const config = JSON.parse('{oops');\n" + GOOD)
    assert "top-level code threw" in caught.value.message
    assert caught.value.line == 1


def test_top_level_code_that_requires_an_npm_package_is_reported_at_compile_time() -> None:
    """A require() of a package the sandbox does not have fails the upload, not the login."""
    with pytest.raises(ActionThrew, match="Cannot find module 'axios'"):
        compile_action("const axios = require('axios');\n" + GOOD)


def test_runaway_top_level_code_is_stopped_by_the_limits() -> None:
    """Compiling runs under the execution limits: an endless loop at top level times out."""
    with pytest.raises(ActionTimeout):
        compile_action("while (true) {}\n" + GOOD, limits=Limits(fuel=20_000_000))


def test_compile_time_console_output_is_dropped() -> None:
    """Top-level console output does not reach compile; it appears in each execution."""
    action = compile_action("console.log('loaded');\n" + GOOD)
    result = execute(action, "onExecutePostLogin", {})
    assert [e["message"] for e in result.logs] == ["loaded"]


def test_unknown_triggers_are_refused() -> None:
    """Only known triggers can be compiled for."""
    with pytest.raises(ActionSyntaxError, match="Unknown trigger"):
        compile_action(GOOD, trigger="no-such-trigger")
