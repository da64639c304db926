"""Share links: a capability for one study or a set, for someone without a Skylight login.

A link is an unguessable token (only its SHA-256 is stored), valid until it expires or is
revoked, optionally behind a second factor (a PIN chosen at creation, or the patient's birth
date) that locks the link after a few wrong tries, view-only or with a download, rate-limited,
and audited on every access. The holder sees the studies in the viewer through a DICOMweb
scoped to the link (``/s/<token>/dicomweb/``), served by the same views as the tenants'.
"""
