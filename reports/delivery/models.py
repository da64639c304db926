"""Models of reports.delivery."""

__all__: list[str] = []
