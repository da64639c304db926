"""Receivers of reports.signals for reports.evidence."""
