"""OHIF on Orthanc, the way Skylight serves OHIF: the comparison target of ``bench.viewer``.

One small same-origin HTTP server (threads, HTTP/1.1 keep-alive) that serves

- ``/viewer/…``: the SAME installed OHIF dist Skylight serves (``var/ohif/<version>/dist``, already
  rewritten for ``/viewer/`` by ``infra/install-ohif.sh``), with its precompressed ``.gz`` copies
  when the browser accepts gzip, ``index.html`` for every client-side route, service workers that
  cache nothing, and an ``app-config.js`` made by Skylight's own ``viewer.views.app_config`` (the
  same keys: tours off, ``wadors`` rendering, lazy study load…) for one ``dicomweb`` data source
  whose roots are this server's ``/dicom-web``;
- ``/dicom-web/…``: a reverse proxy to Orthanc's DICOMweb plugin. Orthanc writes its own origin
  into ``RetrieveURL``/``BulkDataURI``; those are rewritten to this server's origin (as the probe
  of ``../shared/docs/ohif.md`` had to), otherwise the viewer would go cross-origin.

Run it alone against a running Orthanc::

    python -m bench.ohif_proxy http://127.0.0.1:8042
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from viewer import files

from .common import PY, ROOT, free_port, say

PREFIX = "/viewer/"
DICOMWEB = "/dicom-web"
SOURCE = "orthanc"
# The same file types and caching as viewer/views.py, plus the page and images it serves
# through Django.
TYPES = {**files.TYPES, ".html": "text/html; charset=utf-8", ".png": "image/png"}
COMPRESSED = files.COMPRESSED
NO_WORKER = "// bench: no service worker\n"
# Hop-by-hop and length headers are not forwarded as received.
SKIP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}

# Run in a subprocess with Django configured: Skylight's own functions make the configuration,
# so the comparison follows any change to Skylight's viewer settings.
_CONFIG_SCRIPT = """
import json, sys, types
import django
django.setup()
from django.test import RequestFactory
from viewer.views import app_config
# A stand-in tenant the user may read and store into (alice, in Skylight's runs, may do both).
tenant = types.SimpleNamespace(slug=sys.argv[1], name="Orthanc (bench)")
request = RequestFactory().get("/", HTTP_HOST="127.0.0.1")
print(json.dumps(app_config([tenant], request, sys.argv[1], frozenset([sys.argv[1]]))))
"""


def dist_dir() -> Path:
    """The installed OHIF dist Skylight serves (settings.OHIF_DIST's default)."""
    base = Path(os.environ.get("SKYLIGHT_OHIF_DIR", ROOT / "var" / "ohif"))
    ready = sorted(p.parent for p in base.glob("*/.ready"))
    if not ready:
        raise SystemExit(f"no OHIF install under {base}: run infra/install-ohif.sh (make ohif)")
    return ready[-1] / "dist"


def skylight_app_config() -> dict[str, object]:
    """Skylight's app config for one data source named ``orthanc`` (roots set by the server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYLIGHT_", "DATABASE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SKYLIGHT_SECRET_KEY="bench-ohif-proxy-config-only-0123456789-abcdefghij",
        SKYLIGHT_DATA_DIR=str(ROOT / "bench" / ".cache" / "ohif-proxy-settings"),
    )
    done = subprocess.run(
        [PY, "-c", _CONFIG_SCRIPT, SOURCE], cwd=ROOT, env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"could not make the OHIF app config:\n{done.stderr[-2000:]}")
    config: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return config


class OhifOrthancServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, orthanc_url: str, dist: Path, config: dict[str, object]):
        super().__init__(("127.0.0.1", port), Handler)
        self.origin = f"http://127.0.0.1:{self.server_address[1]}"
        parts = urlsplit(orthanc_url)
        self.orthanc = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.orthanc_origin = f"http://{self.orthanc[0]}:{self.orthanc[1]}".encode()
        self.dist = dist
        source = config["dataSources"][0]  # type: ignore[index]
        root = self.origin + DICOMWEB
        source["configuration"].update(qidoRoot=root, wadoRoot=root, wadoUriRoot=root)
        self.app_config = (
            f"// bench: OHIF on Orthanc, Skylight's configuration keys\n"
            f"window.config = {json.dumps(config, indent=2)};\n"
        ).encode()
        self.local = threading.local()

    @property
    def dicomweb_root(self) -> str:
        return self.origin + DICOMWEB

    def orthanc_connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(*self.orthanc, timeout=600)
        return conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OhifOrthancServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path == DICOMWEB or path.startswith(DICOMWEB + "/"):
            self.proxy()
        elif path.startswith(PREFIX) or path == PREFIX.rstrip("/"):
            self.viewer(path[len(PREFIX) :])
        else:
            self.reply(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - STOW of a measurement, not measured
        self.proxy()

    # The viewer's files ---------------------------------------------------------------------

    def viewer(self, relative: str) -> None:
        if relative == "app-config.js":
            return self.reply(200, self.server.app_config, TYPES[".js"], cache="no-store")
        if relative in ("sw.js", "init-service-worker.js"):
            return self.reply(200, NO_WORKER.encode(), TYPES[".js"], cache="no-cache")
        dist = self.server.dist.resolve()
        candidate = (dist / relative).resolve() if relative else dist
        inside = candidate.is_relative_to(dist)
        if inside and candidate.is_file() and candidate.name != "index.html":
            return self.file(candidate)
        suffix = Path(relative).suffix.lower()
        if suffix in TYPES or relative.endswith(".gz") or not inside:
            return self.reply(404, b"no such file\n", "text/plain")
        body = (dist / "index.html").read_bytes()
        self.reply(200, body, TYPES[".html"], cache="no-store")

    def file(self, path: Path) -> None:
        suffix = path.suffix.lower()
        target, encoding = path, ""
        gz = path.with_name(path.name + ".gz")
        if (
            suffix in COMPRESSED
            and "gzip" in (self.headers.get("Accept-Encoding") or "")
            and gz.is_file()
        ):
            target, encoding = gz, "gzip"
        hashed = any(
            len(p) == 16 and all(c in "0123456789abcdef" for c in p) for p in path.name.split(".")
        )
        cache = "public, max-age=31536000, immutable" if hashed else "public, max-age=300"
        extra = {"Content-Encoding": encoding} if encoding else {}
        if suffix in COMPRESSED:
            extra["Vary"] = "Accept-Encoding"
        self.reply(
            200, target.read_bytes(), TYPES.get(suffix, "application/octet-stream"), cache, extra
        )

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str,
        cache: str = "no-store",
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # The reverse proxy to Orthanc ------------------------------------------------------------

    def proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIP}
        for attempt in (1, 2):  # a kept-alive connection Orthanc closed: once more on a new one
            conn = self.server.orthanc_connection()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self.server.local.conn = None
                if attempt == 2:
                    return self.reply(502, b"Orthanc did not answer\n", "text/plain")
        kind = answer.getheader("Content-Type", "")
        if "json" in kind or "xml" in kind:  # Orthanc's own origin in RetrieveURL/BulkDataURI
            data = data.replace(self.server.orthanc_origin, self.server.origin.encode())
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in SKIP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


@contextmanager
def ohif_on_orthanc(orthanc_url: str, port: int = 0) -> Iterator[OhifOrthancServer]:
    """The server on a free loopback port, in a thread, until the block ends."""
    server = OhifOrthancServer(port or free_port(), orthanc_url, dist_dir(), skylight_app_config())
    thread = threading.Thread(target=server.serve_forever, name="ohif-proxy", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("orthanc_url", help="e.g. http://127.0.0.1:8042")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with ohif_on_orthanc(args.orthanc_url, args.port) as server:
        say(f"OHIF on Orthanc at {server.origin}{PREFIX} (Ctrl-C stops it)")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
