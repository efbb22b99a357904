"""The connection table the server processes share (runtime/balance.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.balance import ConnectionTable

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def table_path() -> Iterator[str]:
    path = ConnectionTable.create()
    yield path
    os.unlink(path)


def in_another_process(path: str, code: str) -> str:
    """Run `code` with `table` (a ConnectionTable on `path`) in a process that then exits; its output."""
    done = subprocess.run(
        [sys.executable, "-c", f"from runtime.balance import ConnectionTable\ntable = ConnectionTable({path!r})\n{code}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_each_process_sees_the_fewest_connections_another_holds(table_path: str) -> None:
    table = ConnectionTable(table_path)
    assert table.fewest_elsewhere() is None  # alone
    assert table.claim() == 0
    table.add(3)
    assert table.mine == 3
    assert in_another_process(table_path, "print(table.claim(), table.fewest_elsewhere()); table.add(7)") == "1 3"
    # The other process exited without giving its slot back: a process that is gone holds nothing.
    assert table.fewest_elsewhere() is None
    table.add(-3)
    assert table.mine == 0
    table.close()


def test_a_slot_whose_process_is_gone_is_taken_over(table_path: str) -> None:
    in_another_process(table_path, "table.claim(); table.add(5)")
    table = ConnectionTable(table_path)
    assert table.claim() == 0  # the dead process's slot, its count cleared
    assert table.mine == 0
    assert in_another_process(table_path, "print(table.claim(), table.fewest_elsewhere())") == "1 0"
    table.release()
    assert in_another_process(table_path, "print(table.claim(), table.fewest_elsewhere())") == "0 None"
    assert table.fewest_elsewhere() is None
    table.close()


def test_a_released_slot_is_not_counted(table_path: str) -> None:
    first, second = ConnectionTable(table_path), ConnectionTable(table_path)
    first.claim()
    second.claim()
    first.add(2)
    assert second.fewest_elsewhere() == 2
    first.release()
    assert second.fewest_elsewhere() is None
    first.close()
    second.close()


def test_a_balancing_server_serves_until_closed(table_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """In one process (nobody else in the table), the server accepts and serves every connection (with
    TCP_NODELAY), counts each while it is open, and serve_forever returns once it is closed."""
    import asyncio
    import socket

    from runtime.balance import TABLE_ENV, BalancingLoop

    monkeypatch.setenv(TABLE_ENV, table_path)

    nodelay: list[int] = []

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            nodelay.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        def data_received(self, data: bytes) -> None:
            self.transport.write(data.upper())  # type: ignore[attr-defined]

    async def main() -> tuple[int, int, bytes]:
        loop = asyncio.get_running_loop()
        listening = socket.create_server(("127.0.0.1", 0))
        server = await loop.create_server(Echo, sock=listening)
        serving = asyncio.create_task(server.serve_forever())
        port = listening.getsockname()[1]
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        for _, writer in streams:
            writer.write(b"ping")
        answers = [await reader.readexactly(4) for reader, _ in streams]
        table = ConnectionTable(table_path)
        held = table.counts()[os.getpid()]
        streams[0][1].close()
        await streams[0][1].wait_closed()
        for _ in range(100):
            if table.counts()[os.getpid()] == 2:
                break
            await asyncio.sleep(0.01)
        after_one_closed = table.counts()[os.getpid()]
        server.close()
        await asyncio.wait_for(serving, 5)
        for _, writer in streams[1:]:
            writer.close()
        table.close()
        listening.close()
        assert set(answers) == {b"PING"}
        return held, after_one_closed, answers[0]

    loop = BalancingLoop()
    try:
        held, after_one_closed, answer = loop.run_until_complete(main())
    finally:
        loop.close()
    assert (held, after_one_closed, answer) == (3, 2, b"PING")
    assert nodelay == [1, 1, 1]  # small answers are not held back (Nagle), as on the loop's own server
