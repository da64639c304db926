"""Receivers of reports.signals for reports.delivery."""
