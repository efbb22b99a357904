"""Garbage collection tuned for long-running server and executor processes.

A request allocates many short-lived containers, so the collector runs
often, and now and then it makes a full pass, which walks every object the
process holds: the imported libraries, the app, the caches. In a server
process that pass stopped the event loop for 18-26 ms on a two-core
machine, and the logins waiting behind it were the slowest. After start-up, everything alive is moved out of the
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
