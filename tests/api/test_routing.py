"""The routing table: what every login calls is matched first, and order decides nothing else."""

import re

from starlette.routing import Match, Route

from runtime.api.app import create_app


def _sample_path(route: Route) -> str:
    return re.sub(r"\{[^}]+\}", "x1", route.path)


def test_login_paths_are_tried_first() -> None:
    """The flow API, /continue and the hosted login come before the management API."""
    paths = [r.path for r in create_app().router.routes if isinstance(r, Route)]
    first_management = next(i for i, p in enumerate(paths) if p.startswith("/api/v2/") and "/flows/" not in p)
    assert paths.index("/api/v2/flows/post-login") < first_management
    assert paths.index("/t/{tenant}/continue") < first_management
    assert paths.index("/t/{tenant}/authorize") < first_management


def test_every_route_is_the_first_match_for_its_own_paths() -> None:
    """No route is shadowed by one before it, so the order of the table changes no answer."""
    routes = [r for r in create_app().router.routes if isinstance(r, Route)]
    assert len(routes) > 40
    for route in routes:
        for method in sorted(route.methods or {"GET"}):
            scope = {"type": "http", "path": _sample_path(route), "method": method, "root_path": "", "headers": []}
            first = next(r for r in routes if r.matches(scope)[0] == Match.FULL)
            assert first is route, f"{method} {route.path} is answered by {first.path}"
