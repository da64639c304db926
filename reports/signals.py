"""What the report lifecycle announces, for its features to act on.

``version_signed`` is sent once per signed version, after the transaction that signed it has
committed (so a receiver that queues a Celery task never races the commit). Receivers live in
``reports/<feature>/receivers.py``, connected when the app is ready.
"""

from django.dispatch import Signal

# sender: ReportVersion (the class); version: the signed ReportVersion.
version_signed = Signal()
