"""A hospital reads its own audit log: the page at /audit/, exports (CSV, DICOM audit message XML,
FHIR AuditEvent) and the API under /api/audit/. Every read and export is itself audited."""
