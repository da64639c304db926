"""Reading-group administration: hospitals' agreements with groups (coverage, SLA, period), the
group admin's pages (overview, credentials, shifts, agreements) and credential expiry reminders."""
