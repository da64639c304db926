"""dicomconfig."""
