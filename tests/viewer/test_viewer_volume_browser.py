"""OHIF in a real browser (Debian Chromium, software WebGL), issue 5: one phantom CT series stored
as Explicit VR Little Endian, JPEG 2000, JPEG-LS and RLE lossless renders the same canvas pixels
from frames sent in each study's own syntax; and OHIF's 3D-only hanging protocol renders a small
series (64 slices of 128²) as a volume. Screenshots go to SKYLIGHT_TEST_ARTEFACTS:
viewer-native.png, viewer-jpeg2000.png, viewer-jpegls.png, viewer-rle.png, viewer-3d.png."""

from __future__ import annotations

import base64
import json
import re
import time

import numpy as np
from playwright.sync_api import Page, Response

from studies.dicom import synthetic
from tests.browser import artefacts, chromium, logged_in
from tests.conftest import ingest_now, wait_for
from tests.viewer import phantoms
from tests.viewer.test_viewer_browser import CANVAS_STATS, EXTENTS

# The first viewport canvas's RGBA pixels, base64, to compare renderings byte for byte.
CANVAS_PIXELS = """() => {
  const c = [...document.querySelectorAll('canvas.cornerstone-canvas')]
    .filter(c => c.width > 64 && c.height > 64)[0];
  if (!c) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = '';
  for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode(...d.subarray(i, i + 0x8000));
  return {width: c.width, height: c.height, rgba: btoa(s)};
}"""
# The axial stack's slice indicator in OHIF's overlay, e.g. "(12/24)".
SLICE = re.compile(r"\((\d+)/(\d+)\)")
# A frame part's header: "Content-Type: application/octet-stream; transfer-syntax=1.2...".
PART_TYPE = re.compile(rb"Content-Type:\s*([^;\r\n]+)(?:;\s*transfer-syntax=([0-9.]+))?", re.I)


def canvas(page: Page) -> np.ndarray:
    shot = page.evaluate(CANVAS_PIXELS)
    assert shot is not None
    rgba = np.frombuffer(base64.b64decode(shot["rgba"]), dtype=np.uint8)
    return rgba.reshape(shot["height"], shot["width"], 4)


def settled(page: Page, *, rounds: int = 3, limit: int = 240) -> np.ndarray:
    """The canvas once ``rounds`` successive reads half a second apart are identical."""
    last, same = canvas(page), 0
    for _ in range(limit):
        if same >= rounds:
            return last
        page.wait_for_timeout(500)
        now = canvas(page)
        same = same + 1 if now.shape == last.shape and np.array_equal(now, last) else 0
        last = now
    raise AssertionError(f"the canvas kept changing for {limit / 2:.0f}s")


def frame_parts(responses: list[Response]) -> list[tuple[int, str, str, int]]:
    """(status, part media type, part transfer syntax, body size) of each frame response."""
    parts = []
    for r in responses:
        body = r.body()
        head = PART_TYPE.search(body[:1024])
        media, syntax = (
            (head.group(1).decode(), (head.group(2) or b"").decode()) if head else ("", "")
        )
        parts.append((r.status, media.strip(), syntax, len(body)))
    return parts


SLICES_3D = 64


def test_compressed_copies_render_alike_and_the_3d_protocol_renders_a_volume(web, people):
    originals = phantoms.series(seed=707, slices=24, size=256, patient_id="VIEW-TS")
    copies = [phantoms.stored_as(name, originals, seed=707) for name in phantoms.SYNTAXES]
    for copy in copies:
        ingest_now(people.demo, copy.payloads)
    volume = phantoms.series(seed=606, slices=SLICES_3D, size=128, patient_id="VIEW-3D")
    ingest_now(people.demo, [synthetic.encode_part10(ds) for ds in volume])
    uid3d = str(volume[0].StudyInstanceUID)
    folder = artefacts()
    figures: dict[str, object] = {}

    with chromium() as browser:
        alice = logged_in(browser, web.url, "alice", people.password)
        responses: list[Response] = []
        failed: list[str] = []

        def seen(response: Response) -> None:
            if "/frames/" in response.url:
                responses.append(response)
            if response.status >= 400:
                failed.append(f"{response.status} {response.url.split('?')[0]}")

        alice.on("response", seen)

        # Compressed transfer syntaxes: each copy in the same viewport, default window, slice.
        rendered: dict[str, np.ndarray] = {}
        sent: dict[str, set[tuple[int, str, str]]] = {}
        shown: dict[str, list[str]] = {}
        for copy in copies:
            responses.clear()
            started = time.monotonic()
            alice.goto(f"{web.url}/viewer/viewer?StudyInstanceUIDs={copy.study_uid}")
            alice.wait_for_function(
                f"""() => {{
                  const s = ({CANVAS_STATS})();
                  return s && s.mid > 0.05 && s.bright > 0.0005;
                }}""",
                timeout=120_000,
                polling=500,
            )
            rendered[copy.name] = settled(alice)
            figures[f"{copy.name}_image_s"] = round(time.monotonic() - started, 1)
            alice.screenshot(path=folder / f"viewer-{copy.name}.png")
            shown[copy.name] = SLICE.findall(alice.inner_text("body"))
            parts = frame_parts([r for r in responses if copy.study_uid in r.url])
            sent[copy.name] = {(status, media, syntax) for status, media, syntax, _ in parts}
            figures[f"{copy.name}_frames"] = len(parts)
            figures[f"{copy.name}_frame_bytes"] = sum(size for *_, size in parts)
            figures[f"{copy.name}_sent"] = sorted(sent[copy.name])
            accepts = {r.request.headers.get("accept", "") for r in responses}
            figures[f"{copy.name}_accept"] = sorted(accepts)

        assert not failed, failed
        for copy in copies:
            # Frames of natively stored instances may also come as JPEG-LS lossless.
            accepted = (
                {copy.syntax, phantoms.JPEGLSLossless} if copy.name == "native" else {copy.syntax}
            )
            assert sent[copy.name], copy.name
            assert {syntax for *_, syntax in sent[copy.name]} <= accepted, (copy.name, sent)
            assert {status for status, *_ in sent[copy.name]} == {200}, (copy.name, sent)
        # The same slice shown in a canvas of the same size, with the very same pixels.
        reference = rendered["native"]
        for copy in copies:
            assert shown[copy.name] and shown[copy.name] == shown["native"], shown
            image = rendered[copy.name]
            assert image.shape == reference.shape, (copy.name, image.shape, reference.shape)
            delta = np.abs(image[..., :3].astype(int) - reference[..., :3].astype(int)).max(axis=2)
            figures[f"{copy.name}_pixels_differing"] = int(np.count_nonzero(delta))
            figures[f"{copy.name}_max_difference"] = int(delta.max())
        (folder / "viewer-volume-figures.json").write_text(json.dumps(figures, indent=1))
        for copy in copies:
            assert figures[f"{copy.name}_pixels_differing"] == 0, (
                f"{copy.name}: {figures[f'{copy.name}_pixels_differing']} of {reference.shape[0] * reference.shape[1]} "
                f"canvas pixels differ from the native copy's, by up to "
                f"{figures[f'{copy.name}_max_difference']} levels"
            )

        # 3D: OHIF's "only3D" protocol, one volume3d viewport (coronal, CT-Bone preset).
        responses.clear()
        started = time.monotonic()
        alice.goto(f"{web.url}/viewer/viewer?StudyInstanceUIDs={uid3d}&hangingprotocolId=only3D")
        alice.wait_for_function(
            f"""() => {{
              const e = ({EXTENTS})();
              return e.length === 1 && e[0].lit > 0.01;
            }}""",
            timeout=300_000,
            polling=1000,
        )
        figures["3d_first_light_s"] = round(time.monotonic() - started, 1)

        def volume_loaded() -> bool:
            # Playwright's sync API delivers response events only while it is called: wait in
            # the page, not in time.sleep, or the count never moves.
            alice.wait_for_timeout(500)
            return len({r.url for r in responses}) >= SLICES_3D

        wait_for(volume_loaded, timeout=300, interval=0.1, what="the volume's frames")
        image = settled(alice)
        figures["3d_settled_s"] = round(time.monotonic() - started, 1)
        alice.screenshot(path=folder / "viewer-3d.png")
        views = alice.evaluate(EXTENTS)
        rgb = image[..., :3].astype(float)
        lit = rgb[rgb.mean(axis=2) > 40]
        figures["3d_extents"] = views
        figures["3d_lit_grey_std"] = round(float(lit.mean(axis=1).std()), 1) if lit.size else 0
        figures["3d_lit_red_minus_blue"] = (
            round(float((lit[:, 0] - lit[:, 2]).mean()), 1) if lit.size else 0
        )
        (folder / "viewer-volume-figures.json").write_text(json.dumps(figures, indent=1))
        assert not failed, failed
        # A rendered volume, not a blank or flat canvas: a lit band whose height to width is
        # the series' (64 slices of 1.25 mm against 128 columns of 2.8125 mm, seen from the
        # front), with texture across it (ribs, spine, lungs) in the preset's bone colours.
        assert len(views) == 1, views
        band = views[0]
        depth = float(volume[0].SliceThickness) * SLICES_3D
        width = float(volume[0].PixelSpacing[1]) * int(volume[0].Columns)
        assert band["lit"] > 0.10, figures
        assert abs(band["tall"] / band["wide"] - depth / width) < 0.15 * depth / width, figures
        assert figures["3d_lit_grey_std"] > 15, figures
        assert figures["3d_lit_red_minus_blue"] > 20, figures
