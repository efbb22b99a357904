"""The web console: a small single-page app under ``/console`` over the management API.

The app's sources live in ``web/`` and are bundled at set-up (``make console``)
into ``_built/``, which is never committed; this package only serves them.
The console holds no logic of its own: every change goes through the same
routes the CLI and the SDK use, with the key the user signs in with.
"""

from runtime.console.site import routes

__all__ = ["routes"]
