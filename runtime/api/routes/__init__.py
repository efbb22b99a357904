"""The API's endpoints, by concept."""

from runtime.api.endpoints import Endpoint
from runtime.api.routes import actions, clients, executions, flows, identity, operator, settings, stats, users

# Order matters where paths overlap: /tenants/settings before /tenants/{id}.
ENDPOINTS: list[Endpoint] = [
    *settings.ENDPOINTS,
    *operator.ENDPOINTS,
    *actions.ENDPOINTS,
    *executions.ENDPOINTS,
    *stats.ENDPOINTS,
    *clients.ENDPOINTS,
    *users.ENDPOINTS,
    *flows.ENDPOINTS,
    *identity.ENDPOINTS,
]

__all__ = ["ENDPOINTS"]
