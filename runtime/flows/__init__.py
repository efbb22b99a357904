"""Post-login flows: the bound actions run in order, their commands checked and applied, redirects resumed."""

from runtime.flows.outcome import Outcome
from runtime.flows.runner import (
    SESSION_IDLE,
    SESSION_LIFETIME,
    TRANSACTION_LIFETIME,
    FlowResult,
    FlowRunner,
    FlowState,
)

__all__ = [
    "SESSION_IDLE",
    "SESSION_LIFETIME",
    "TRANSACTION_LIFETIME",
    "FlowResult",
    "FlowRunner",
    "FlowState",
    "Outcome",
]
