"""Garbage collection tuned for long-running server and executor processes.

A request allocates many short-lived containers; CPython's default
thresholds then run a full collection every few hundred requests, and a
full collection walks every object the process holds: the imported
libraries, the app, the caches. On a busy two-core machine such a pass
stalls the event loop for tens of milliseconds, which is what the slowest
logins waited for. After start-up, everything alive is moved out of the
collector's sight (``gc.freeze``: it lives until the process ends anyway),
and the youngest generation is collected less often, so that a full pass
only walks what was made since.
"""

from __future__ import annotations

import gc

# Containers allocated (net) before the youngest generation is collected;
# CPython's default is 700.
YOUNG_THRESHOLD = 20_000


def settle_after_startup() -> None:
    """Collect once, freeze what survived, and collect less often from now on."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
