"""Retrieve latency: WADO-RS series metadata and single frames, request by request.

Data, stored over STOW-RS into every target before the clock starts:

- the synthetic 300-slice CT (512×512, 16 bits, Explicit VR Little Endian) of ``bench.common``;
- a second study of five 512×512 CT slices twice over: compressed with pydicom's encoders to
  JPEG-LS lossless (pyjpegls) in one series and to JPEG 2000 lossless (pylibjpeg-openjpeg) in
  another, each slice with new UIDs.

Variants (one kept-alive connection per target, keys taken in turn):

- ``wado-series-metadata``: ``GET .../studies/{s}/series/{se}/metadata`` of the 300-slice series
  (``application/dicom+json``; the first answer is checked to hold 300 data sets);
- ``wado-frame-raw``: ``.../instances/{i}/frames/1`` of 50 distinct CT slices,
  ``Accept: multipart/related; type="application/octet-stream"; transfer-syntax=*`` (stored,
  uncompressed bytes);
- ``wado-frame-jpegls-decoded`` and ``wado-frame-j2k-decoded``: frame 1 of the compressed
  instances, ``transfer-syntax=1.2.840.10008.1.2.1``: the server decodes it.

The first answer to each key is checked (after the clock): one part holding exactly the frame's
pixel bytes (the stored ones, or the lossless source's); the part's ``Content-Type`` is kept in
the results. A target that fails every warm-up request (Orthanc's stock build on JPEG 2000
answers HTTP 500 here) is reported with that status, not timed. Skylight's database is
``ANALYZE``d after loading, as in ``bench.query``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .common import (
    CACHE,
    KeptAlive,
    Sample,
    Study,
    ct_study,
    forget_study,
    multipart_parts,
    run_latency,
    say,
)
from .query import analyze, skylight_database, stow_parts
from .targets import Target

CT_SEED = 4_200_000  # fixed: the same study every run (cached under bench/.cache)
COMPRESSED_SEED = 4_200_001
COMPRESSED_SLICES = 5
RAW_KEYS = 50
RAW = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
DECODED = 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1'
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"


def uids(path: Any, expected: dict[str, bytes] | None = None) -> tuple[str, str, str]:
    """The UIDs of a stored slice; ``expected`` gets its frame (stored uncompressed)."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=expected is None)
    if expected is not None:
        expected[str(ds.SOPInstanceUID)] = bytes(ds.PixelData)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def compressed(
    source: Study, expected: dict[str, bytes]
) -> tuple[list[bytes], dict[str, list[tuple[str, str, str]]]]:
    """The source slices as a new study with a JPEG-LS and a JPEG 2000 lossless series: Part 10
    bytes, and the (study, series, instance) UIDs by transfer syntax. ``expected`` gets each
    instance's decoded frame (the source's pixel data: both are lossless)."""
    import io

    import pydicom
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, generate_uid

    study_uid = generate_uid(entropy_srcs=[f"bench-retrieve-{source.seed}"])
    parts: list[bytes] = []
    keys: dict[str, list[tuple[str, str, str]]] = {}
    for n, syntax in enumerate((JPEGLSLossless, JPEG2000Lossless)):
        series_uid = generate_uid(entropy_srcs=[f"bench-retrieve-{source.seed}-{syntax}"])
        for path in source.files:
            ds = pydicom.dcmread(path)
            raw = bytes(ds.PixelData)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.SeriesNumber = 100 + n
            ds.SeriesDescription = f"LOSSLESS {syntax.name}"[:64]
            ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"{series_uid}-{path.name}"])
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.compress(syntax)
            expected[str(ds.SOPInstanceUID)] = raw
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            parts.append(buffer.getvalue())
            keys.setdefault(str(syntax), []).append((study_uid, series_uid, str(ds.SOPInstanceUID)))
    return parts, keys


def frame_check(path: str, reply: Any, checks: dict[str, Any], expected: dict[str, bytes]) -> None:
    """The first answer to each path: one part holding the frame's exact bytes."""
    if path in checks or reply.status != 200:
        checks.setdefault(path, {"status": reply.status})
        return
    parts = multipart_parts(reply)
    frame = expected.get(path.split("/instances/")[1].split("/")[0])
    checks[path] = {
        "parts": len(parts),
        "bytes": len(parts[0][1]) if parts else len(reply.body),
        "content_type": reply.headers.get("content-type", ""),
        "part_content_type": parts[0][0].get("content-type", "") if parts else "",
        "as_expected": len(parts) == 1 and parts[0][1] == frame,
    }
    if not checks[path]["as_expected"]:
        say(f"  unexpected frame answer for {path}: {checks[path]}")


def metadata_check(path: str, reply: Any, checks: dict[str, Any], expected: int) -> None:
    if path in checks:
        return
    if reply.status != 200:
        checks[path] = {"status": reply.status}
        return
    found = reply.json() or []
    checks[path] = {"data_sets": len(found), "bytes": len(reply.body),
                    "as_expected": len(found) == expected}  # fmt: skip
    if len(found) != expected:
        say(f"  metadata of {path}: {len(found)} data sets, expected {expected}")


def getter(
    client: KeptAlive,
    paths: list[str],
    accept: str,
    check: Callable[[str, Any], None],
) -> Callable[[int], Sample]:
    def call(i: int) -> Sample:
        path = paths[i % len(paths)]
        seconds, reply = client.get(path, {"Accept": accept})
        check(path, reply)
        ok = reply.status == 200
        note = "" if ok else reply.body[:160].decode("utf-8", "replace")
        return Sample(seconds, reply.status, ok, note)

    return call


def frame_paths(keys: list[tuple[str, str, str]]) -> list[str]:
    return [f"/studies/{s}/series/{se}/instances/{i}/frames/1" for s, se, i in keys]


def run(args: argparse.Namespace, targets: list[Target]) -> dict[str, Any]:
    ct = ct_study(CT_SEED, slices=args.slices)
    source = ct_study(COMPRESSED_SEED, slices=COMPRESSED_SLICES)
    frames: dict[str, bytes] = {}
    extra, by_syntax = compressed(source, frames)
    step = max(1, ct.instances // RAW_KEYS)
    raw_keys = [uids(p, frames) for p in ct.files[::step][:RAW_KEYS]]
    study_uid, series_uid, _ = raw_keys[0]
    data = {
        "ct": {"slices": ct.instances, "bytes": ct.bytes, "seed": ct.seed},
        "compressed": {"slices": COMPRESSED_SLICES, "syntaxes": sorted(by_syntax),
                       "bytes": sum(len(p) for p in extra)},
        "cache": str(CACHE),
    }  # fmt: skip
    loading: dict[str, Any] = {}
    for target in targets:
        seconds = stow_parts(target, [p.read_bytes() for p in ct.files] + extra, batch=50)
        waited = target.wait_indexed()
        loading[target.name] = {"stow_s": round(seconds, 1), "indexed_after_s": round(waited, 1)}
        say(f"{target.name}: CT ({ct.instances} slices) and {len(extra)} compressed slices "
            f"stored in {seconds:.0f}s, indexed {waited:.0f}s later")  # fmt: skip
    analyzed = analyze(skylight_database(args, targets))
    paths = {
        "wado-series-metadata": ([f"/studies/{study_uid}/series/{series_uid}/metadata"], None),
        "wado-frame-raw": (frame_paths(raw_keys), RAW),
        "wado-frame-jpegls-decoded": (frame_paths(by_syntax[JPEG_LS_LOSSLESS]), DECODED),
        "wado-frame-j2k-decoded": (frame_paths(by_syntax[J2K_LOSSLESS]), DECODED),
    }
    checks: dict[str, dict[str, dict[str, Any]]] = {}
    clients = {t.name: KeptAlive(t.dicomweb_root, t.headers) for t in targets}
    results: dict[str, Any] = {}
    try:
        for variant, (variant_paths, accept) in paths.items():
            calls = {}
            for t in targets:
                seen = checks.setdefault(f"{variant}/{t.name}", {})
                if accept is None:
                    calls[t.name] = getter(
                        clients[t.name], variant_paths, "application/dicom+json",
                        lambda p, r, seen=seen: metadata_check(p, r, seen, ct.instances),
                    )  # fmt: skip
                else:
                    calls[t.name] = getter(
                        clients[t.name], variant_paths, accept,
                        lambda p, r, seen=seen: frame_check(p, r, seen, frames),
                    )  # fmt: skip
            say(f"{variant}: {args.repeats} requests per target, {len(variant_paths)} keys")
            reconnects = {name: client.reconnects for name, client in clients.items()}
            measured = run_latency(
                calls, args.repeats, rounds=args.rounds, warmup=args.warmup,
                max_busy=args.max_busy, max_steal=args.max_steal, steal_retries=args.steal_retries,
            )  # fmt: skip
            for name, result in measured.items():
                result["answers"] = checks[f"{variant}/{name}"]
                result["reconnects"] = clients[name].reconnects - reconnects[name]
                results[f"{variant}/{name}"] = result
    finally:
        for client in clients.values():
            client.close()
        if not args.keep_data:
            forget_study(ct)
            forget_study(source)
    return {"results": results, "loading": loading, "data": data, "analyzed": analyzed}
