"""Subscriptions to other apps' hooks."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def on_study_ready(sender: Any, *, study_id: int, **kwargs: Any) -> None:
    """A study became ready to read: make its work item here, in the process that ran the ready
    sweep (one short transaction). If this fails or the process dies first, the periodic
    housekeeping makes the item (``services.ensure_items_for_ready_studies``)."""
    from . import services

    try:
        ensured = services.ensure_item(study_id)
    except Exception:  # noqa: BLE001 - the housekeeping retries; identifiers only in the log
        log.exception("work item for study %d not made; the housekeeping will retry", study_id)
        return
    if ensured is not None and ensured.created:
        services.after_create(ensured.item)
