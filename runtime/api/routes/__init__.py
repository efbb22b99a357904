"""The API's endpoints, by concept."""

from runtime.api.endpoints import Endpoint
from runtime.api.routes import actions, clients, executions, flows, operator, settings, users

# Order matters where paths overlap: /tenants/settings before /tenants/{id}.
ENDPOINTS: list[Endpoint] = [
    *settings.ENDPOINTS,
    *operator.ENDPOINTS,
    *actions.ENDPOINTS,
    *executions.ENDPOINTS,
    *clients.ENDPOINTS,
    *users.ENDPOINTS,
    *flows.ENDPOINTS,
]

__all__ = ["ENDPOINTS"]
