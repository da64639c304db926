"""Models of reports.critical."""

__all__: list[str] = []
