"""Models of reports.collab."""

__all__: list[str] = []
