"""Models of reports.review."""

__all__: list[str] = []
