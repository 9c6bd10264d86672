"""One router per resource; :func:`embedder.service.app.create_app` includes them in this order."""

from embedder.service.routes import events, items, jobs, ops, page, search, users

ROUTERS = [ops.router, search.router, items.router, users.router, events.router, jobs.router, page.router]

__all__ = ["ROUTERS"]
