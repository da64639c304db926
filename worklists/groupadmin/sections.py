"""A set-up wizard section (tenants/onboarding/sections.py); not built yet."""

SECTION = None
