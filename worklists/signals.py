"""Subscriptions to other apps' hooks."""

from __future__ import annotations

from typing import Any


def on_study_ready(sender: Any, *, study_id: int, **kwargs: Any) -> None:
    """A study became ready to read: queue its work item. If this is lost (the process died
    between commit and queueing), the periodic housekeeping creates the item."""
    from .tasks import create_item

    create_item.delay(study_id)
