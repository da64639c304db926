"""`make run` on a fresh clone: installs, migrates, seeds and answers on 8000 and 11112."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, wait_for


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_make_run_on_a_fresh_clone_answers_on_8000_and_11112(tmp_path: Path):
    assert _port_free(8000) and _port_free(11112), (
        "ports 8000/11112 are taken: stop the other Skylight first"
    )
    clone = tmp_path / "skylight"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SKYLIGHT_", "DATABASE_URL", "CELERY_", "PYTEST"))
    }
    env["SKYLIGHT_DEMO_PASSWORD"] = "demo-password-for-the-make-run-test"
    log = tmp_path / "make-run.log"
    process = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True,
    )
    try:

        def web_up() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=2) as r:  # noqa: S310
                    return r.status == 200
            except OSError:
                return False

        wait_for(web_up, timeout=900, interval=1, what="make run to answer on 8000")
        echo = subprocess.run(
            ["echoscu", "-aec", "DEMOHOSP", "127.0.0.1", "11112"], capture_output=True, timeout=30
        )
        assert echo.returncode == 0, echo.stderr
        login = urllib.request.urlopen("http://127.0.0.1:8000/login/", timeout=10)  # noqa: S310
        assert b"Log in to Skylight" in login.read()
        text = log.read_text()
        assert "demo studies added: 5" in text and "Skylight is running" in text
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
