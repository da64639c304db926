"""Object storage for original DICOM bytes: S3 (django-storages + boto3) or local files.

Both backends add the few operations ingest needs on top of Django's Storage API: ``put`` that
returns only once the bytes are durable, ``read_range`` for reading a header without the pixels,
and deletion. Keys start with the tenant and are built from our own ids only
(``tenants/<tenant id>/objects/<uuid>.dcm``), never from DICOM strings a sender controls.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from functools import lru_cache
from typing import IO, Any, Protocol

from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, storages
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

_client_lock = threading.Lock()

# Objects up to this size go in one PUT; larger ones use S3 multipart upload from a stream.
SINGLE_PUT_LIMIT = 64 * 1024 * 1024


def object_key(tenant_id: int, object_id: uuid.UUID) -> str:
    return f"tenants/{int(tenant_id)}/objects/{object_id.hex[:2]}/{object_id.hex}.dcm"


def derived_key(tenant_id: int, kind: str, name: str) -> str:
    return f"tenants/{int(tenant_id)}/derived/{kind}/{name}"


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes | IO[bytes], size: int) -> None: ...
    def read_range(self, key: str, start: int, length: int) -> bytes: ...
    def open(self, name: str, mode: str = "rb") -> File: ...
    def delete(self, name: str) -> None: ...
    def exists(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...


class DurableFileSystemStorage(FileSystemStorage):
    """Local files that are on disk when ``put`` returns: write a temporary file, fsync it, rename
    it into place and fsync the directory."""

    def put(self, key: str, data: bytes | IO[bytes], size: int) -> None:
        path = self.path(key)
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    out.write(data)
                else:
                    while chunk := data.read(1024 * 1024):
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with open(self.path(key), "rb") as f:
            f.seek(start)
            return f.read(length)


class S3ObjectStorage(S3Storage):
    """S3 through django-storages, with a single-request PUT for the common case."""

    def __init__(self, **settings: Any) -> None:
        # Checksums only where S3 requires them: the default (a CRC32 trailer on every upload,
        # sent chunked) makes some S3-compatible servers noticeably slower for nothing, since we
        # keep our own SHA-256 of every object.
        settings.setdefault(
            "client_config",
            Config(
                # No SigV4 payload hash: botocore would SHA-256 every body again (2+ ms per 0.5 MB
                # here) and we already keep our own SHA-256 of every object. Over HTTPS botocore
                # skips it anyway when a checksum header is present.
                s3={
                    "addressing_style": settings.get("addressing_style") or "path",
                    "payload_signing_enabled": False,
                },
                retries={"max_attempts": 4, "mode": "standard"},
                max_pool_connections=32,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                connect_timeout=5,
                read_timeout=60,
            ),
        )
        super().__init__(**settings)

    @property
    def client(self) -> Any:
        # django-storages keeps one boto3 *resource* per thread (resources are not thread-safe);
        # a low-level client is, so the hot paths share one: per-thread clients would each load
        # botocore's service models (tens of MB) and open their own connection pools.
        client = self.__dict__.get("_shared_client")
        if client is None:
            with _client_lock:
                client = self.__dict__.get("_shared_client")
                if client is None:
                    client = self._create_session().client(
                        "s3",
                        region_name=self.region_name,
                        use_ssl=self.use_ssl,
                        endpoint_url=self.endpoint_url,
                        config=self.client_config,
                        verify=self.verify,
                    )
                    self.__dict__["_shared_client"] = client
        return client

    def delete(self, name: str) -> None:
        self.client.delete_object(
            Bucket=self.bucket_name, Key=self._normalize_name(clean_name(name))
        )

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(
                Bucket=self.bucket_name, Key=self._normalize_name(clean_name(name))
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put(self, key: str, data: bytes | IO[bytes], size: int) -> None:
        # A 200 to PutObject means the object is stored durably (S3's contract); boto3 retries
        # connection errors and 5xx answers on its own, so failures reaching us are final.
        if isinstance(data, (bytes, bytearray, memoryview)):
            self.client.put_object(
                Bucket=self.bucket_name, Key=key, Body=bytes(data), ContentLength=size
            )
        elif size <= SINGLE_PUT_LIMIT:
            self.client.put_object(
                Bucket=self.bucket_name, Key=key, Body=data.read(), ContentLength=size
            )
        else:
            self.client.upload_fileobj(data, self.bucket_name, key)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        end = start + length - 1
        response = self.client.get_object(
            Bucket=self.bucket_name, Key=key, Range=f"bytes={start}-{end}"
        )
        return response["Body"].read()

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket_name)
        except self.client.exceptions.ClientError:
            self.client.create_bucket(Bucket=self.bucket_name)


@lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    return storages["dicom"]  # type: ignore[return-value]


def reset_object_store() -> None:
    """Forget the cached backend (tests switch settings)."""
    object_store.cache_clear()
    storages._storages.pop("dicom", None)  # type: ignore[attr-defined]  # Django keeps no public reset
