"""groupadmin."""
