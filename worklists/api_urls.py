"""REST API of the worklist (worklists/api.py), under /api/worklist/."""


urlpatterns: list = []  # type: ignore[type-arg]
