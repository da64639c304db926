"""De-identification: the profile, de-identified shares, the policy."""
