"""What tenants use: the local runner (and, as they arrive, the typed client and typings).

The local runner executes an action exactly as production does: the same
engine build, the same sandbox, the same limits, and prints the result with
its stats against those limits.
"""

from sdk.runner import RunReport, run_action, sample_event

__all__ = ["RunReport", "run_action", "sample_event"]
