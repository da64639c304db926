"""Receivers of reports.signals for reports.critical."""
