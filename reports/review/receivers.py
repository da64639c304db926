"""Receivers of reports.signals for reports.review."""
