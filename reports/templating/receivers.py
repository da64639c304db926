"""Receivers of reports.signals for reports.templating."""
