"""What tenants use: the local runner, the management API's client, tenant descriptors, the CLI, replay, typings.

The local runner executes an action exactly as production does: the same
engine build, the same sandbox, the same limits, and prints the result with
its stats against those limits. The client (:mod:`sdk.client`), the
descriptors (:mod:`sdk.descriptor`), the tenant commands (:mod:`sdk.cli`)
and replay (:mod:`sdk.replay`) are imported from their modules, so that
running an action locally never loads an HTTP client. ``sdk/types`` holds the
actions' TypeScript declarations.
"""

from sdk.runner import RunReport, run_action, sample_event

__all__ = ["RunReport", "run_action", "sample_event"]
