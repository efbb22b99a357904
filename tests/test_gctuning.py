"""Garbage collection in serving processes: the start-up heap is out of the collector's way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import gc, json, time
import runtime.api.app  # the whole service, as a server process holds it
before = len(gc.get_objects())
from runtime.gctuning import YOUNG_THRESHOLD, settle_after_startup
settle_after_startup()
started = time.perf_counter()
gc.collect()
print(json.dumps({
    "before": before,
    "after": len(gc.get_objects()),
    "frozen": gc.get_freeze_count(),
    "young_threshold": gc.get_threshold()[0],
    "expected_threshold": YOUNG_THRESHOLD,
}))
"""


def test_a_settled_process_leaves_its_start_up_heap_out_of_full_collections() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    report = json.loads(out)
    # Tens of thousands of objects before; a full collection now walks only what came after.
    assert report["before"] > 10_000
    assert report["frozen"] >= report["before"] * 0.9
    assert report["after"] < report["before"] / 20
    assert report["young_threshold"] == report["expected_threshold"]
