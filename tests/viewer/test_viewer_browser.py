"""OHIF in a real browser (Debian Chromium through Playwright, software WebGL): alice opens a CT
from her hospital and sees the phantom's anatomy, a left drag changes window/level and the
pixels, the viewer's DICOMweb writes (STOW-RS) carry the CSRF token the generated config adds,
and the MPR layout shows three orthogonal views; charlie, of another hospital, opening the same
URL gets the error page and no DICOMweb answer with data. Screenshots go to
SKYLIGHT_TEST_ARTEFACTS: viewer-stack.png, viewer-wl.png, viewer-mpr.png,
viewer-other-tenant.png."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import pydicom
from playwright.sync_api import Request, Response
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from studies.dicom import synthetic
from tests.browser import artefacts, chromium, logged_in
from tests.conftest import ingest_now, wait_for

# Grey-level statistics of the viewport canvas, computed in the page. The series' window is
# 40/400 HU: air (-1000) is black, soft tissue (40) mid grey, cortical bone (1150) white.
CANVAS_STATS = """() => {
  const canvases = [...document.querySelectorAll('canvas.cornerstone-canvas')]
    .filter(c => c.width > 64 && c.height > 64);
  if (!canvases.length) return null;
  const c = canvases[0];
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0, dark = 0, mid = 0, bright = 0, midSum = 0, darkSum = 0, sum = 0;
  for (let i = 0; i < data.length; i += 4) {
    const g = (data[i] + data[i + 1] + data[i + 2]) / 3;
    n++;
    sum += g;
    if (g <= 20) { dark++; darkSum += g; }
    else if (g >= 90 && g <= 170) { mid++; midSum += g; }
    else if (g >= 230) { bright++; }
  }
  return {width: c.width, height: c.height, dark: dark / n, mid: mid / n, bright: bright / n,
          midMean: mid ? midSum / mid : 0, darkMean: dark ? darkSum / dark : 0, mean: sum / n};
}"""
# The window and level OHIF's viewport overlay shows ("W: 400 L: 40").
WINDOW_LEVEL = """() => {
  const m = document.body.innerText.match(/W:\\s*(-?[0-9.]+)\\s*L:\\s*(-?[0-9.]+)/);
  return m ? [parseFloat(m[1]), parseFloat(m[2])] : null;
}"""


# A STOW-RS of one Part 10 instance made in the page, the way OHIF saves a measurement SR: an
# XHR (OHIF's DICOMweb client) or a fetch, with no CSRF header of its own.
STOW = """async ({b64, how}) => {
  const boundary = 'skylight-viewer-test';
  const enc = new TextEncoder();
  const part = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const head = enc.encode(`--${boundary}\\r\\nContent-Type: application/dicom\\r\\n\\r\\n`);
  const tail = enc.encode(`\\r\\n--${boundary}--\\r\\n`);
  const body = new Uint8Array(head.length + part.length + tail.length);
  body.set(head); body.set(part, head.length); body.set(tail, head.length + part.length);
  const url = '/t/demo-hospital/dicomweb/studies';
  const type = `multipart/related; type="application/dicom"; boundary=${boundary}`;
  if (how === 'fetch') {
    const r = await fetch(url, {method: 'POST', body,
                                headers: {'Content-Type': type, Accept: 'application/dicom+json'}});
    return {status: r.status, text: await r.text()};
  }
  return await new Promise(resolve => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Content-Type', type);
    xhr.setRequestHeader('Accept', 'application/dicom+json');
    xhr.onload = () => resolve({status: xhr.status, text: xhr.responseText});
    xhr.onerror = () => resolve({status: 0, text: 'network error'});
    xhr.send(body);
  });
}"""
QIDO = """async (uid) => {
  const r = await fetch(`/t/demo-hospital/dicomweb/instances?SOPInstanceUID=${uid}`,
                        {headers: {Accept: 'application/dicom+json'}});
  return r.status === 200 ? await r.json() : [];
}"""


def new_ct_small() -> tuple[str, str]:
    """pydicom's CT_small.dcm as a new instance: its SOP Instance UID and its bytes in base64."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    uid = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return uid, base64.b64encode(buffer.getvalue()).decode()


# For each viewport canvas: the extent (in canvas pixels) of the rows and columns that hold
# anatomy, i.e. at least 4 pixels brighter than air. Stray noise pixels do not count.
EXTENTS = """() => {
  const canvases = [...document.querySelectorAll('canvas.cornerstone-canvas')]
    .filter(c => c.width > 64 && c.height > 64);
  return canvases.map(c => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const rows = new Array(c.height).fill(0), cols = new Array(c.width).fill(0);
    let lit = 0;
    for (let y = 0; y < c.height; y++) {
      for (let x = 0; x < c.width; x++) {
        const i = 4 * (y * c.width + x);
        if ((d[i] + d[i + 1] + d[i + 2]) / 3 > 40) { rows[y]++; cols[x]++; lit++; }
      }
    }
    const span = a => {
      const idx = a.map((v, i) => v >= 4 ? i : -1).filter(i => i >= 0);
      return idx.length ? idx[idx.length - 1] - idx[0] + 1 : 0;
    };
    return {width: c.width, height: c.height, lit: lit / (c.width * c.height),
            tall: span(rows), wide: span(cols)};
  });
}"""


def small_ct(tenant: Any) -> str:
    """A 30-slice 256² chest CT of the synthetic phantom, stored and indexed; its study UID."""
    spec = synthetic.simple_spec(seed=505, slices=30, rows=256, columns=256, patient_id="VIEW-1")
    ingest_now(tenant, [synthetic.encode_part10(ds) for ds in synthetic.iter_study(spec)])
    return synthetic.study_uid(spec)


def test_alice_sees_the_phantom_and_charlie_gets_the_error_page(web, people):
    uid = small_ct(people.demo)
    launch = f"{web.url}/viewer/viewer?StudyInstanceUIDs={uid}"
    folder = artefacts()
    with chromium() as browser:
        alice = logged_in(browser, web.url, "alice", people.password)
        frames: list[int] = []
        failed: list[str] = []

        def seen(response: Response) -> None:
            if "/frames/" in response.url:
                frames.append(response.status)
            if response.status >= 400:
                failed.append(f"{response.status} {response.url.split('?')[0]}")

        alice.on("response", seen)
        alice.goto(launch)
        # Functional bound only: OHIF starting under software GL on 2 cores takes seconds.
        alice.wait_for_function(
            f"""() => {{
              const s = ({CANVAS_STATS})();
              return s && s.mid > 0.05 && s.bright > 0.0005;
            }}""",
            timeout=120_000,
            polling=500,
        )
        stats = alice.evaluate(CANVAS_STATS)
        alice.screenshot(path=folder / "viewer-stack.png")
        assert frames and set(frames) == {200}
        assert not failed, failed  # every chunk, worker and codec found under /viewer/
        # The phantom, not merely "not black": a body of soft tissue (mid grey) in air
        # (black), with cortical bone (vertebra, ribs, sternum) white.
        assert stats["dark"] > 0.10, stats
        assert stats["mid"] > 0.10, stats
        assert stats["bright"] > 0.001, stats
        assert stats["midMean"] - stats["darkMean"] > 80, stats

        # Window/level: OHIF's left-drag tool. Dragging down raises the level (centre), so
        # the same pixels map to darker greys; the overlay shows the new values.
        before = alice.evaluate(WINDOW_LEVEL)
        assert before is not None, alice.inner_text("body")[:2000]
        box = alice.locator("canvas.cornerstone-canvas").first.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 3
        alice.mouse.move(x, y)
        alice.mouse.down()
        alice.mouse.move(x + 10, y + 150, steps=15)
        alice.mouse.up()
        alice.wait_for_function(
            f"""(before) => {{
              const wl = ({WINDOW_LEVEL})();
              return wl && (wl[0] !== before[0] || wl[1] !== before[1]);
            }}""",
            arg=before,
            timeout=30_000,
            polling=250,
        )
        after = alice.evaluate(WINDOW_LEVEL)
        wl_stats = alice.evaluate(CANVAS_STATS)
        alice.screenshot(path=folder / "viewer-wl.png")
        assert after[1] > before[1], (before, after)  # the level rose
        assert wl_stats["mean"] < stats["mean"] - 10, (
            stats,
            wl_stats,
        )  # and the image darkened

        # Saving from the viewer: STOW-RS with the session cookie, by XHR and by fetch.
        # The generated config adds the X-CSRFToken that OHIF does not send.
        posted: list[Request] = []
        alice.on("request", lambda r: posted.append(r) if r.method == "POST" else None)
        for how in ("xhr", "fetch"):
            sop, b64 = new_ct_small()
            stored = alice.evaluate(STOW, {"b64": b64, "how": how})
            assert stored["status"] == 200, (how, stored)
            wait_for(
                lambda sop=sop: alice.evaluate(QIDO, sop),  # type: ignore[misc]
                timeout=60,
                interval=0.5,
                what=f"QIDO to find the instance stored by {how}",
            )
        assert len(posted) == 2
        assert all(r.headers.get("x-csrftoken") for r in posted), [r.headers for r in posted]

        # MPR: OHIF's "mpr" hanging protocol, named in the launch URL. Three viewports, one
        # axial (the body's section: about as tall as wide) and two reformats, sagittal and
        # coronal, whose height is the 30 slices (37.5 mm) against 256 columns: a flat band.
        alice.goto(f"{launch}&hangingprotocolId=mpr")
        alice.wait_for_function(
            f"""() => {{
              const e = ({EXTENTS})();
              if (e.length !== 3 || !e.every(v => v.lit > 0.005 && v.wide > 40)) return false;
              const flat = e.filter(v => v.tall / v.wide < 0.35).length;
              const round = e.filter(v => v.tall / v.wide > 0.5).length;
              return flat === 2 && round === 1;
            }}""",
            timeout=240_000,
            polling=1000,
        )
        alice.wait_for_timeout(1000)  # let the last slices of the volume paint
        views = alice.evaluate(EXTENTS)
        alice.screenshot(path=folder / "viewer-mpr.png")
        assert len(views) == 3, views
        aspects = sorted(v["tall"] / v["wide"] for v in views)
        assert aspects[0] < 0.35 and aspects[1] < 0.35 and aspects[2] > 0.5, views
        # The reformats page through the 256 columns and rows, the axial through 30 slices.
        overlay = alice.inner_text("body")
        assert len(re.findall(r"\b\d+/256\b", overlay)) == 2, overlay[-1500:]
        assert re.search(r"\(\d+/30\)", overlay), overlay[-1500:]

        charlie = logged_in(browser, web.url, "charlie", people.password)
        answered: list[Response] = []
        charlie.context.on("response", lambda r: answered.append(r) if "/t/" in r.url else None)
        page = charlie.goto(launch)
        assert page is not None and page.status == 404
        assert "This study does not exist or you may not see it" in charlie.inner_text("main")
        # Whatever he tries from here, the other hospital's DICOMweb answers him nothing.
        charlie.evaluate(
            """async (uid) => {
              for (const path of [`studies?StudyInstanceUID=${uid}`,
                                  `studies/${uid}/series`, `studies/${uid}/metadata`]) {
                await fetch(`/t/demo-hospital/dicomweb/${path}`,
                            {headers: {Accept: 'application/dicom+json'}});
              }
            }""",
            uid,
        )
        charlie.screenshot(path=folder / "viewer-other-tenant.png")
        assert len(answered) == 3
        assert all(r.status == 404 for r in answered), [r.status for r in answered]
        assert all(uid not in r.text() for r in answered)
    for name in ("viewer-stack.png", "viewer-wl.png", "viewer-mpr.png"):
        assert (folder / name).stat().st_size > 0
