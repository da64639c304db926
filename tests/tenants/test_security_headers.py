"""Security headers on every web response, as a browser receives them from gunicorn: CSP (ours,
and OHIF's own under /viewer/), frame-ancestors, Referrer-Policy, nosniff, and HSTS on HTTPS."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Web, start_web, stop_process


def _directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in filter(None, (p.strip() for p in policy.split(";"))):
        name, *values = part.split()
        out[name] = values
    return out


def _login(web: Web, username: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{web.url}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "the login form carries a CSRF token"
    answer = session.post(
        f"{web.url}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        headers={"Referer": f"{web.url}/login/"},
        timeout=30,
    )
    assert answer.ok
    return session


def _assert_common(response: requests.Response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    policy = _directives(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]


def test_our_pages_allow_no_inline_script_without_the_requests_nonce(web, people):
    session = _login(web, "alice", people.password)
    first = session.get(f"{web.url}/worklist/", timeout=30)
    second = session.get(f"{web.url}/worklist/", timeout=30)
    assert first.status_code == second.status_code == 200
    for response in (first, second):
        _assert_common(response)
        script = _directives(response.headers["Content-Security-Policy"])["script-src"]
        assert "'unsafe-inline'" not in script
        assert "'unsafe-eval'" not in script
    nonces = [
        next(
            v
            for v in _directives(r.headers["Content-Security-Policy"])["script-src"]
            if "nonce" in v
        )
        for r in (first, second)
    ]
    assert nonces[0] != nonces[1], "a fresh nonce for every response"


def test_the_login_page_and_errors_carry_the_headers_too(web):
    login = requests.get(f"{web.url}/login/", timeout=30)
    missing = requests.get(f"{web.url}/no-such-page/", timeout=30)
    assert login.status_code == 200 and missing.status_code == 404
    for response in (login, missing):
        _assert_common(response)


def test_dicomweb_answers_are_never_sniffed(web, people, token_for):
    answer = requests.get(
        f"{web.dicomweb('demo-hospital')}/studies",
        headers={"Authorization": f"Bearer {token_for(people.alice)}"},
        timeout=30,
    )
    assert answer.status_code in (200, 204)
    _assert_common(answer)


def test_the_viewer_has_its_own_policy_for_wasm_workers_and_inline_styles(web, people):
    session = _login(web, "alice", people.password)
    answer = session.get(f"{web.url}/viewer/app-config.js", timeout=30)
    _assert_common(answer)
    policy = _directives(answer.headers["Content-Security-Policy"])
    assert "'wasm-unsafe-eval'" in policy["script-src"]
    assert "blob:" in policy["worker-src"]
    assert "'unsafe-inline'" in policy["style-src"]


def test_plain_http_gets_no_hsts(web):
    assert "Strict-Transport-Security" not in requests.get(f"{web.url}/login/", timeout=30).headers


@pytest.fixture
def https_web(tmp_path, people) -> Iterator[Web]:  # noqa: ANN001
    """The web tier as production runs it behind a TLS-terminating proxy."""
    web = start_web(
        tmp_path / "gunicorn.log",
        workers=1,
        extra_env={"SKYLIGHT_SECURE_COOKIES": "true", "SKYLIGHT_BEHIND_PROXY": "true"},
    )
    try:
        yield web
    finally:
        stop_process(web.process)


def test_behind_a_tls_proxy_every_answer_carries_hsts_and_secure_cookies(https_web):
    answer = requests.get(
        f"{https_web.url}/login/", headers={"X-Forwarded-Proto": "https"}, timeout=30
    )
    assert answer.status_code == 200
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "secure" in answer.headers["Set-Cookie"].lower()
    _assert_common(answer)
