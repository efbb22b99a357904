"""The login plane over HTTP: the hosted login (a small OIDC provider per tenant under ``/t/{tenant}/``),
``/continue`` for flows an action suspended, and the flow API's browser side."""
