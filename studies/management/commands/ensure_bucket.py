from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from studies.storage import S3ObjectStorage, object_store


class Command(BaseCommand):
    help = (
        "Create the object-storage bucket if it does not exist (S3 only; a no-op for local files)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        store = object_store()
        if isinstance(store, S3ObjectStorage):
            store.ensure_bucket()
            self.stdout.write(f"bucket {store.bucket_name} is ready")
        else:
            self.stdout.write("local file storage: nothing to do")
