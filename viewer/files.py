"""How the OHIF dist's files are served: media types, which have ``.gz`` copies, and caching.
Plain Python (no Django), so the viewer benchmark's stand-alone server serves them the same way."""

from __future__ import annotations

import re

# Files whose name carries a content hash never change: a year in any cache.
HASHED = re.compile(r"(^|[.])[0-9a-f]{16}[.]")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=300"
# Suffixes infra/install-ohif.sh writes .gz copies of.
COMPRESSED = {".js", ".css", ".wasm", ".json", ".map", ".html", ".svg"}
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".xml": "application/xml",
    ".onnx": "application/octet-stream",
}

# Files the server writes per user (or per link) under /viewer/: never public.
PER_USER = frozenset({"app-config.js", "sw.js", "init-service-worker.js"})


def is_public_asset(path: str) -> bool:
    """A request path for a file that is the same for everyone: collected static files, and the
    viewer dist's files (not its per-user scripts, not its client-side routes). Middleware that
    would read the session leaves these alone, so they stay cacheable across users (no
    ``Vary: Cookie``)."""
    if path.startswith("/static/"):
        return True
    if not path.startswith("/viewer/"):
        return False
    name = path.rsplit("/", 1)[-1]
    if name in PER_USER:
        return False
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return suffix in TYPES or name.endswith(".gz")
