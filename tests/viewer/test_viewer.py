"""The viewer at /viewer/ over HTTP, against the live server: OHIF's files, the configuration
generated for each user, the client-side route fallback, and the launch check."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import requests
from django.conf import settings
from pydicom.data import get_testdata_file

from tenants.models import AuditAction, AuditEvent
from tests.conftest import ingest_now

# The study in pydicom's CT_small.dcm.
CT_SMALL_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"


def login(web: Any, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{web.url}/login/", timeout=30)
    response = session.post(
        f"{web.url}/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{web.url}/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:500]
    return session


def window_config(response: requests.Response) -> dict[str, Any]:
    match = re.search(r"window\.config = (\{.*?\n\});\n", response.text, re.S)
    assert match, response.text[:500]
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def launch(session: requests.Session, web: Any, uid: str, **params: str) -> requests.Response:
    return session.get(
        f"{web.url}/viewer/viewer",
        params={"StudyInstanceUIDs": uid, **params},
        allow_redirects=False,
        timeout=30,
    )


def test_app_config_lists_exactly_the_tenants_the_user_may_read(web, people):
    sources = {}
    for name in ("alice", "bob", "charlie"):
        response = login(web, name, people.password).get(f"{web.url}/viewer/app-config.js")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert response.headers["Cache-Control"] == "no-store"
        config = window_config(response)
        sources[name] = [s["sourceName"] for s in config["dataSources"]]
        assert config["routerBasename"] == "/viewer"
        assert config["customizationService"] == [{"ohif.tours": {"$set": []}}]
        for source in config["dataSources"]:
            root = f"{web.url}/t/{source['sourceName']}/dicomweb"
            conf = source["configuration"]
            assert conf["qidoRoot"] == conf["wadoRoot"] == conf["wadoUriRoot"] == root
            assert conf["imageRendering"] == conf["thumbnailRendering"] == "wadors"
            assert conf["dicomUploadEnabled"] is True
            assert conf["omitQuotationForMultipartRequest"] is True
        assert "Skylight" in response.text  # the logo
    assert sources == {
        "alice": ["demo-hospital"],
        "bob": ["demo-hospital", "second-hospital"],
        "charlie": ["second-hospital"],
    }


def test_saving_measurements_is_offered_only_where_the_user_may_store(web, people):
    """A group admin reads every hospital of the group but stores into none: OHIF must not
    offer to save a measurement (STOW-RS of an SR) that the server would refuse."""
    from tenants import services
    from tenants.models import Role, User

    gina = User.objects.create_user("gina", password=people.password)
    services.add_membership(user=gina, group=people.group, role=Role.GROUP_ADMIN)
    services.add_membership(user=gina, tenant=people.second, role=Role.TECHNOLOGIST)
    config = window_config(
        login(web, "gina", people.password).get(f"{web.url}/viewer/app-config.js")
    )
    upload = {
        s["sourceName"]: s["configuration"]["dicomUploadEnabled"] for s in config["dataSources"]
    }
    assert upload == {"demo-hospital": False, "second-hospital": True}


def test_the_default_data_source_is_only_ever_one_the_user_may_read(web, people):
    charlie = login(web, "charlie", people.password)
    asked = charlie.get(f"{web.url}/viewer/app-config.js", params={"default": "demo-hospital"})
    config = window_config(asked)
    assert config["defaultDataSourceName"] == "second-hospital"
    assert "demo-hospital" not in asked.text


def test_the_viewer_requires_login(web, people):
    anonymous = requests.Session()
    config = anonymous.get(f"{web.url}/viewer/app-config.js", timeout=30)
    assert config.status_code == 401 and "window.config" not in config.text
    for path in ("/viewer/", "/viewer/viewer?StudyInstanceUIDs=1.2.3"):
        page = anonymous.get(f"{web.url}{path}", allow_redirects=False, timeout=30)
        assert page.status_code == 302
        assert page.headers["Location"].startswith("/login/?next=/viewer/")


def test_ohif_files_are_served_rewritten_with_content_types_gzip_and_long_caching(web, people):
    alice = login(web, "alice", people.password)
    page = alice.get(f"{web.url}/viewer/", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-store"
    assert 'window.PUBLIC_URL="/viewer/"' in page.text
    assert 'src="/viewer/app-config.js"' in page.text
    assert not re.search(r'(href|src)="/(?!viewer/|/)', page.text)
    bundle = re.search(r'src="(/viewer/app\.bundle\.[0-9a-f]+\.js)"', page.text)
    assert bundle
    # Assets are not patient data: they load without a session, and cache for a year.
    anonymous = requests.Session()
    script = anonymous.get(
        f"{web.url}{bundle.group(1)}", headers={"Accept-Encoding": "gzip"}, timeout=60
    )
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert script.headers["Content-Encoding"] == "gzip"
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert '__webpack_require__.p = "/viewer/";' in script.text
    plain = anonymous.get(
        f"{web.url}{bundle.group(1)}", headers={"Accept-Encoding": "identity"}, stream=True
    )
    assert "Content-Encoding" not in plain.headers and plain.headers["Vary"] == "Accept-Encoding"
    plain.close()
    css = anonymous.get(f"{web.url}/viewer/app.bundle.css", timeout=30)
    assert css.headers["Content-Type"].startswith("text/css")
    assert "url(/viewer/" in css.text and not re.search(r"url\(/(?!viewer/|/)", css.text)
    wasm_name = next(Path(settings.OHIF_DIST).glob("*.wasm")).name
    wasm = anonymous.get(
        f"{web.url}/viewer/{wasm_name}", headers={"Accept-Encoding": "gzip"}, stream=True
    )
    assert wasm.headers["Content-Type"] == "application/wasm"
    assert wasm.headers["Content-Encoding"] == "gzip"
    wasm.close()
    favicon = anonymous.get(f"{web.url}/viewer/assets/favicon.ico", timeout=30)
    assert favicon.status_code == 200 and favicon.headers["Content-Type"] == "image/x-icon"
    missing = anonymous.get(f"{web.url}/viewer/no-such-chunk.0123456789abcdef.js", timeout=30)
    assert missing.status_code == 404
    # A path out of the dist is a client-side route like any other: the page, not the file.
    traversal = alice.get(f"{web.url}/viewer/..%2f..%2fconfig/settings.py", timeout=30)
    assert '<div id="root">' in traversal.text and "SECRET_KEY" not in traversal.text


def test_the_service_workers_register_nothing_and_remove_what_was_there(web, people):
    for name in ("init-service-worker.js", "sw.js"):
        response = requests.get(f"{web.url}/viewer/{name}", timeout=30)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert "unregister()" in response.text
        assert ".register(" not in response.text and "importScripts" not in response.text


def test_any_other_path_under_viewer_is_the_application_page(web, people):
    alice = login(web, "alice", people.password)
    for path in ("/viewer/viewer", "/viewer/segmentation/x", "/viewer/some/client/route"):
        response = alice.get(f"{web.url}{path}", timeout=30)
        assert response.status_code == 200, path
        assert '<div id="root">' in response.text
        assert response.headers["Cache-Control"] == "no-store"


def test_a_launch_opens_a_readable_study_and_is_audited(web, people):
    ingest_now(people.demo, [open(get_testdata_file("CT_small.dcm"), "rb").read()])
    alice = login(web, "alice", people.password)
    response = launch(alice, web, CT_SMALL_STUDY)
    assert response.status_code == 200
    assert '<div id="root">' in response.text
    assert 'src="/viewer/app-config.js?default=demo-hospital"' in response.text
    probe = alice.head(f"{web.url}/viewer/viewer", params={"StudyInstanceUIDs": CT_SMALL_STUDY})
    assert probe.status_code == 200
    opened = AuditEvent.objects.get(action=AuditAction.VIEWER_OPEN)  # one: the GET
    assert opened.actor_user == people.alice and opened.tenant == people.demo
    assert opened.study_instance_uid == CT_SMALL_STUDY and opened.patient_ref is not None
    # bob reads both hospitals; naming the one that holds the study works too.
    bob = login(web, "bob", people.password)
    assert launch(bob, web, CT_SMALL_STUDY, datasources="demo-hospital").status_code == 200


def test_another_tenants_study_is_not_found_and_says_nothing_about_it(web, people):
    ingest_now(people.demo, [open(get_testdata_file("CT_small.dcm"), "rb").read()])
    charlie = login(web, "charlie", people.password)
    bob = login(web, "bob", people.password)
    refused = [
        launch(charlie, web, CT_SMALL_STUDY),
        launch(charlie, web, CT_SMALL_STUDY, datasources="demo-hospital"),
        launch(charlie, web, "1.2.3.4.5.6.7.8.9"),  # exists nowhere: the same answer
        launch(charlie, web, "not-a-uid"),
        launch(bob, web, CT_SMALL_STUDY, datasources="second-hospital"),
    ]
    for response in refused:
        assert response.status_code == 404
        assert "This study does not exist or you may not see it" in response.text
        assert "CompressedSamples" not in response.text  # the patient's name
        assert CT_SMALL_STUDY not in response.text
        assert "app-config.js" not in response.text
    assert not AuditEvent.objects.filter(action=AuditAction.VIEWER_OPEN).exists()
    # And his DICOMweb requests for it answer nothing: the tenant is not his.
    qido = charlie.get(
        f"{web.dicomweb('demo-hospital')}/studies",
        params={"StudyInstanceUID": CT_SMALL_STUDY},
        timeout=30,
    )
    assert qido.status_code == 404


def test_the_worklist_item_page_links_to_a_launch_that_opens_its_study(web, people):
    from tests.worklists.conftest import make_item

    item = make_item(people.demo, patient_name="LINK^LENA")
    alice = login(web, "alice", people.password)
    page = alice.get(f"{web.url}/worklist/items/{item.pk}/", timeout=30)
    assert page.status_code == 200 and "(placeholder)" not in page.text
    link = re.search(r'<a class="button" id="open-viewer" href="([^"]+)"', page.text)
    assert link, page.text[:2000]
    href = html.unescape(link.group(1))
    assert href.startswith("/viewer/viewer?StudyInstanceUIDs=")
    opened = alice.get(f"{web.url}{href}", allow_redirects=False, timeout=30)
    assert opened.status_code == 200 and "app-config.js?default=demo-hospital" in opened.text
    assert AuditEvent.objects.filter(
        action=AuditAction.VIEWER_OPEN, study_instance_uid=item.study.study_instance_uid
    ).exists()


def test_a_user_who_reads_no_hospital_gets_the_error_page_and_no_data_source(web, people):
    from tenants.models import User

    User.objects.create_user("dora", password=people.password)
    dora = login(web, "dora", people.password)
    page = dora.get(f"{web.url}/viewer/", timeout=30)
    assert page.status_code == 404 and "you may not see it" in page.text
    assert window_config(dora.get(f"{web.url}/viewer/app-config.js"))["dataSources"] == []


def test_the_config_adds_the_csrf_token_that_session_writes_need(web, people):
    """OHIF sends no CSRF token; the generated config adds it (the browser test stores through
    it). Without it a session's STOW-RS is refused, so that test fails if the snippet breaks."""
    alice = login(web, "alice", people.password)
    del alice.cookies["csrftoken"]
    page = alice.get(f"{web.url}/viewer/", timeout=30)
    assert page.status_code == 200 and "csrftoken" in page.cookies  # the page sets it
    script = alice.get(f"{web.url}/viewer/app-config.js", timeout=30).text
    assert "X-CSRFToken" in script and "XMLHttpRequest.prototype.open" in script
    rendered = re.search(r'\}\)\("([A-Za-z0-9]{64})"\);\n$', script)
    assert rendered, script[-300:]
    body = open(get_testdata_file("CT_small.dcm"), "rb").read()
    boundary = "skylight-viewer-test"
    multipart = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + body
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    url = f"{web.dicomweb('demo-hospital')}/studies"
    refused = alice.post(url, data=multipart, headers=headers, timeout=30)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    # The token the config renders is accepted, as the snippet sends it.
    accepted = alice.post(
        url, data=multipart, headers={**headers, "X-CSRFToken": rendered.group(1)}, timeout=30
    )
    assert accepted.status_code == 200, accepted.text
