"""Hooks other apps subscribe to.

``study_ready`` is sent once per transition of a study into READY, after the transaction that made
the transition commits. Keyword arguments: ``tenant_id``, ``study_id``, ``study_instance_uid``,
``ready_at`` and ``first_time`` (False when late instances re-opened a study that was ready before).
"""

from django.dispatch import Signal

study_ready = Signal()
