"""Models of reports.templating."""

__all__: list[str] = []
