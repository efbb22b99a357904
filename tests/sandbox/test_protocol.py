"""Everything the guest returns is hostile input: the host's checks refuse what is malformed."""

import msgpack
import pytest

from runtime.limits import KiB, Limits
from runtime.sandbox import ActionLimitExceeded, ActionProtocolError, ActionSyntaxError, ActionThrew
from runtime.sandbox import _protocol as proto

LIMITS = Limits(output_bytes=4 * KiB, log_bytes=4 * KiB, max_commands=3)


def stream(*values: object) -> bytes:
    return b"".join(msgpack.packb(v) for v in values)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"status": "done", "error": null}',
        b'{"status": "completed", "error": {"class": "action_error", "message": "x"}}',
        b'{"status": "failed", "error": null}',
        b'{"status": "failed", "error": {"class": "root_shell", "message": "x"}}',
        b'{"status": "failed", "error": {"class": "action_error", "message": 5}}',
        b'{"status": "failed", "error": {"class": "action_error", "message": "x", "line": -1}}',
        b"[" * 100_000,
    ],
    ids=[
        "empty",
        "not-json",
        "array",
        "bad-status",
        "completed-with-error",
        "failed-without-error",
        "unknown-class",
        "message-not-text",
        "negative-line",
        "deep-nesting",
    ],
)
def test_malformed_outcomes_are_protocol_errors(raw: bytes) -> None:
    """An outcome that is not exactly the documented shape is an action_protocol error."""
    with pytest.raises(ActionProtocolError):
        proto.parse_outcome(raw)


def test_well_formed_outcomes_become_typed_errors() -> None:
    """The error classes the guest may report map to their exception types."""
    threw = proto.parse_outcome(
        b'{"status": "failed", "error": {"class": "action_error", "name": "TypeError", "message": "m",'
        b' "stack": "TypeError: m", "line": 3, "column": 7}}'
    )
    assert isinstance(threw.error, ActionThrew)
    assert (threw.error.name, threw.error.line, threw.error.column) == ("TypeError", 3, 7)
    assert proto.parse_outcome(proto.OUTCOME_COMPLETED).error is None


def test_error_texts_are_capped() -> None:
    """A huge message from the guest is cut to a bounded length."""
    data = {"class": "action_error", "message": "x" * 100_000, "stack": "y" * 100_000}
    error = proto.error_from_guest(data)
    assert isinstance(error, ActionThrew)
    assert len(error.message) == proto.MAX_ERROR_TEXT and len(error.stack) == proto.MAX_ERROR_TEXT


def test_commands_must_be_typed_maps_in_the_announced_number() -> None:
    """Commands are checked: count, shape, and size against output_bytes and max_commands."""
    ok = stream({"type": "deny", "reason": "r"})
    assert proto.parse_commands(ok, 1, LIMITS) == [{"type": "deny", "reason": "r"}]
    with pytest.raises(ActionProtocolError):
        proto.parse_commands(ok, 2, LIMITS)
    with pytest.raises(ActionProtocolError):
        proto.parse_commands(stream({"kind": "deny"}), 1, LIMITS)
    with pytest.raises(ActionProtocolError):
        proto.parse_commands(stream([1, 2]), 1, LIMITS)
    with pytest.raises(ActionProtocolError):
        proto.parse_commands(b"\xc1\xc1\xc1", 1, LIMITS)
    with pytest.raises(ActionLimitExceeded):
        proto.parse_commands(stream(*[{"type": "deny"}] * 4), 4, LIMITS)
    with pytest.raises(ActionLimitExceeded):
        proto.parse_commands(stream({"type": "deny", "reason": "x" * 5000}), 1, LIMITS)


def test_logs_must_be_level_and_text_pairs() -> None:
    """Console entries are [level, message] with a known level, within log_bytes."""
    assert proto.parse_logs(stream(["warn", "w"]), 1, LIMITS) == [{"level": "warn", "message": "w"}]
    for bad in (stream(["shout", "w"]), stream(["log", 5]), stream({"level": "log"}), stream(["log"])):
        with pytest.raises(ActionProtocolError):
            proto.parse_logs(bad, 1, LIMITS)
    with pytest.raises(ActionProtocolError):
        proto.parse_logs(stream(["log", "x" * 5000]), 1, LIMITS)


def test_compile_reports_are_checked() -> None:
    """A compile report names handlers as text, or carries a typed error."""
    assert proto.parse_compile_report(b'{"ok": true, "handlers": ["onExecutePostLogin"]}') == ["onExecutePostLogin"]
    with pytest.raises(ActionSyntaxError):
        proto.parse_compile_report(b'{"ok": false, "error": {"class": "action_syntax", "message": "m"}}')
    for bad in (b'{"ok": true}', b'{"ok": true, "handlers": [1]}', b'{"ok": "yes"}', b"null"):
        with pytest.raises(ActionProtocolError):
            proto.parse_compile_report(bad)


def test_a_damaged_status_block_is_refused() -> None:
    """The status block must carry its magic number."""
    with pytest.raises(ActionProtocolError):
        proto.Status.parse(bytes(proto.STATUS.size))
