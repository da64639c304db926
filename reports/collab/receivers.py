"""Receivers of reports.signals for reports.collab."""
