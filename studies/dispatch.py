"""Hand receipts to the indexing queue from a background thread, in batches.

The SCP's association threads and STOW requests call ``submit`` after their receipts commit and
return at once; this thread groups what arrived within a few milliseconds per tenant and queues one
``index_receipts`` task per group (in the embedded mode, where tasks run in-process, it runs them
itself, off the request path). If the process dies with receipts still here, they are pending in the
database and the reconciler queues them again: this buffer is an optimisation, never the record.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict

from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger(__name__)

_GATHER_SECONDS = 0.02


class Dispatcher:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[int, list[int]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._outstanding = 0
        self._idle = threading.Condition()

    def submit(self, tenant_id: int, receipt_ids: list[int]) -> None:
        self._ensure_started()
        with self._idle:
            self._outstanding += 1
        self._queue.put((tenant_id, list(receipt_ids)))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far has been handed on (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def _done(self, n: int) -> None:
        with self._idle:
            self._outstanding -= n
            self._idle.notify_all()

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="skylight-dispatch", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        from .services import queue_indexing

        batch_size = settings.SKYLIGHT["INDEX_BATCH_SIZE"]
        while True:
            item = self._queue.get()
            if item is None:
                return
            taken = 1
            groups: dict[int, list[int]] = defaultdict(list)
            groups[item[0]].extend(item[1])
            # Gather what else arrives in the next few milliseconds, up to one batch per tenant.
            while sum(len(v) for v in groups.values()) < batch_size:
                try:
                    more = self._queue.get(timeout=_GATHER_SECONDS)
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                taken += 1
                groups[more[0]].extend(more[1])
            for tenant_id, ids in groups.items():
                try:
                    queue_indexing(tenant_id, ids)
                except Exception:  # noqa: BLE001 - the reconciler re-queues pending receipts
                    log.exception(
                        "could not queue indexing of %d receipts for tenant %s", len(ids), tenant_id
                    )
                finally:
                    close_old_connections()
            self._done(taken)


dispatcher = Dispatcher()
