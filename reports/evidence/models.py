"""Models of reports.evidence."""

__all__: list[str] = []
