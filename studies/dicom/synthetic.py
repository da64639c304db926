"""Deterministic synthetic CT and MR studies for demo data, tests and benchmarks.

Everything derives from a StudySpec: UIDs from the seed through name-based UUIDs, pixels from a
numpy phantom whose noise comes from default_rng, so one spec always gives the same bytes. The
anatomy is a function of the relative position along the scan, so any slice count covers the
whole chest or head and scrolling changes it smoothly. Deliberately free of Django.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

# uuid5(NAMESPACE_OID, "skylight-synthetic/implementation-class"); set explicitly so that the bytes
# do not change with the pydicom version, whose own UID pydicom would otherwise write.
IMPLEMENTATION_CLASS_UID = "2.25.21962184571009528306749481286168289540"
IMPLEMENTATION_VERSION_NAME = "SKYLIGHT_SYN1"
MANUFACTURER = "Skylight Synthetic"
INSTITUTION = "Skylight Demo Hospital"
ISSUER = "SKYLIGHT-DEMO"


@dataclass(frozen=True)
class PatientSpec:
    patient_id: str
    patient_name: str  # DICOM PN, e.g. "DOE^JANE"
    birth_date: str  # "YYYYMMDD"
    sex: str  # "F" / "M" / "O"


@dataclass(frozen=True)
class StudySpec:
    seed: int
    patient: PatientSpec
    modality: str  # "CT" or "MR"
    description: str
    accession_number: str
    study_date: str  # "YYYYMMDD"
    study_time: str  # "HHMMSS"
    referring_physician: str  # PN
    body_part: str  # e.g. "CHEST", "HEAD"
    slices: int
    rows: int = 512
    columns: int = 512
    series_count: int = 1  # number of series in the study (each `slices` images)


class T(IntEnum):
    """Tissue classes of the phantom; the tables below give each a value per contrast."""

    AIR, FAT, SOFT, LUNG, CORTEX, BONE, BLOOD, LIVER, GM, WM, CSF, DISC, TABLE, SKIN, SKULL, DIPLOE = range(16)  # fmt: skip


# Value of each tissue (columns in the order of T) per contrast. On T1 white matter is brighter
# than grey and CSF dark; T2 and FLAIR reverse grey and white, and FLAIR nulls CSF.
# fmt: off
#      AIR   FAT  SOFT  LUNG CORTX  BONE BLOOD LIVER    GM    WM   CSF  DISC TABLE  SKIN SKULL DIPLO
_VALUES = np.array([
    [-1000, -100,   40, -850, 1150,  700,   42,   58,   38,   28,    6,   85,  150,   30, 1000,  600],  # CT (HU)
    [    0, 1050,  450,   20,   40,  750,  150,  600,  600,  850,  180,  350,    0,  650,   40,  800],  # MR T1
    [    0,  650,  350,   20,   30,  500,  100,  300,  760,  560, 1150,  900,    0,  550,   30,  520],  # MR T2
    [    0,  550,  300,   20,   30,  400,   80,  280,  760,  540,   90,  500,    0,  480,   30,  420],  # MR FLAIR
], np.int16)
CT_HU, MR_SIGNAL = _VALUES[0], {"T1": _VALUES[1], "T2": _VALUES[2], "FLAIR": _VALUES[3]}
# description, kernel, window centre and width, noise level (x/32 of raw), sharp (unsmoothed)
CT_RECONS = {
    "HEAD": [("AX BRAIN 1.0", "H30s", 40, 80, 5, False), ("AX BONE 1.0", "H70h", 600, 2800, 8, True)],
    "BODY": [("AX 1.25 STANDARD", "STANDARD", 40, 400, 12, False),
             ("AX 1.25 LUNG", "LUNG", -600, 1500, 8, True), ("AX 1.25 BONE", "BONE", 500, 2000, 8, True)],
}
# weighting, description, scanning sequence, sequence name, TR, TE, TI, echo train, flip angle
MR_SEQUENCES = [
    ("T1", "T1 AX SE", ["SE"], "*se2d1", 500, 14, None, 1, 90),
    ("T2", "T2 AX TSE", ["SE"], "*tse2d1_15", 4000, 100, None, 15, 150),
    ("FLAIR", "FLAIR AX", ["SE", "IR"], "*tir2d1_15", 9000, 90, 2500, 15, 150),
]
# fmt: on


def _ramp(t: float, start: float, length: float) -> float:
    return min(max((t - start) / length, 0.0), 1.0)


class _Phantom:
    """Paint axial slices of a chest or head phantom, anatomy varying with t in [0, 1] along z."""

    def __init__(self, spec: StudySpec) -> None:
        self.head = spec.body_part.upper() in ("HEAD", "BRAIN")
        self.rows, self.columns = spec.rows, spec.columns
        self.ps = (240.0 if self.head else 360.0) / max(spec.rows, spec.columns)  # FOV / matrix
        if spec.modality.upper() == "MR":  # 2D stacks of <= 5 mm over ~150 mm; 1 mm if many
            self.thickness = round(min(5.0, max(1.0, 150 / spec.slices)), 1)
        else:
            self.thickness = 1.0 if self.head else 1.25
        self.span = (spec.slices - 1) * self.thickness
        self.x = ((np.arange(spec.columns) - (spec.columns - 1) / 2) * self.ps).astype(np.float32)
        self.y = ((np.arange(spec.rows) - (spec.rows - 1) / 2) * self.ps).astype(np.float32)
        # Angle (mirrored at the midline) times k, quantised to a byte so that turning the pattern
        # per slice is one wrapping uint8 addition instead of trigonometry over the whole image.
        theta = np.arctan2(self.y[:, None], np.abs(self.x)[None, :])
        k = 18 if self.head else 14  # gyri around the brain, ribs around the chest
        self.phase = np.round(k * theta * (128 / math.pi)).astype(np.int64).astype(np.uint8)
        # Habitus from the patient, not the seed, so that a prior shows the same anatomy; the
        # nodule's radius grows 0.75 mm a year from 2020, so the prior shows it smaller.
        prng = np.random.default_rng(zlib.crc32(spec.patient.patient_id.encode()))
        self.scale = 0.92 + 0.16 * prng.random()
        self.nodule_at = (prng.uniform(-0.06, 0.06), prng.uniform(-0.2, 0.1))
        years = (dt.datetime.strptime(spec.study_date, "%Y%m%d") - dt.datetime(2020, 1, 1)).days
        self.nodule_mm = min(10.0, max(1.5, 2.0 + 0.75 * years / 365.25))
        if not self.head:  # lung vessel cross-sections: large sparse ones and small dense ones
            self.vessels = [self._dots(prng, 0.0015, 2.2), self._dots(prng, 0.005, 1.0)]

    def _dots(self, prng: np.random.Generator, per_mm2: float, radius_mm: float) -> np.ndarray:
        """Return a periodic mask of randomly placed discs, to be rolled as z changes."""
        # Positions drawn in relative units, so a prior at another matrix size matches.
        where = prng.random((round(per_mm2 * self.rows * self.columns * self.ps**2), 2))
        seeds = np.zeros((self.rows, self.columns), bool)
        rows, columns = (where * (self.rows, self.columns)).astype(int).T
        seeds[rows, columns] = True
        if radius_mm < self.ps / 2:  # unresolved: a whole pixel per vessel would flood the lung
            return np.zeros_like(seeds)
        r, dots = round(radius_mm / self.ps), seeds.copy()
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if 0 < dx * dx + dy * dy <= r * r:
                    dots |= np.roll(seeds, (dy, dx), axis=(0, 1))
        return dots

    def _span(self, centre: float, radius: float, axis: np.ndarray) -> tuple[int, int]:
        mid = (len(axis) - 1) / 2
        lo = max(0, math.floor((centre - radius) / self.ps + mid))
        return lo, min(len(axis), math.ceil((centre + radius) / self.ps + mid) + 1)

    def _ellipse(
        self, img: np.ndarray, value: int, cx: float, cy: float, a: float, b: float
    ) -> None:
        (r0, r1), (c0, c1) = self._span(cy, b, self.y), self._span(cx, a, self.x)
        if a > 0 and b > 0 and r0 < r1 and c0 < c1:  # only the bounding box: most are small
            dx, dy = (self.x[c0:c1] - cx) / a, (self.y[r0:r1] - cy) / b
            img[r0:r1, c0:c1][dx[None, :] ** 2 + dy[:, None] ** 2 <= 1] = value

    def _near(self, phase: float, half_width: float) -> np.ndarray:
        """Mask where k * angle + phase is within half_width radians of a multiple of 2 pi."""
        shift = round((phase + half_width) * 128 / math.pi) % 256
        return self.phase + np.uint8(shift) < round(half_width * 256 / math.pi)

    def _crest(self, phase: float) -> np.ndarray:
        """Triangle wave of k * angle + phase: 1 on a crest, 0 in a trough."""
        q = self.phase + np.uint8(round(phase * 128 / math.pi) % 256)
        return 1 - np.abs(q.view(np.int8).astype(np.int16)) / np.float32(128)

    def paint(self, t: float, z: float, v: np.ndarray) -> np.ndarray:
        """Return the noiseless slice at relative position t (z in mm), tissue values from v."""
        img = np.full((self.rows, self.columns), v[T.AIR], np.int16)
        (self._head if self.head else self._chest)(img, t, z, v)
        return img

    def _chest(self, img: np.ndarray, t: float, z: float, v: np.ndarray) -> None:
        s, e, x, y = self.scale, self._ellipse, self.x, self.y
        a, b, cy = 165 * s * (0.92 + 0.08 * math.sin(math.pi * t)), 112 * s, -10.0
        r0, r1 = self._span(cy + b + 11, 4, y)
        img[r0:r1, :] = v[T.TABLE]
        rho = (x / a)[None, :] ** 2 + ((y - cy) / b)[:, None] ** 2
        img[rho <= 1] = v[T.FAT]
        img[rho <= 0.88**2] = v[T.SOFT]
        if t < 0.95:  # ribs: arcs on a ring whose phase turns with z, as sloping ribs do
            ribs = (rho > 0.80**2) & (rho <= 0.86**2) & self._near(2 * math.pi * z / 45, 1.1)
            img[ribs] = v[T.CORTEX]
        lung_r = math.sin(math.pi * min(t / 0.9, 1.0)) ** 0.6  # the liver dome ends the right lung
        lung_l = math.sin(math.pi * min(t / 0.97, 1.0)) ** 0.6
        e(img, v[T.LUNG], -0.42 * a, cy - 0.02 * b, 0.36 * a * lung_r, 0.72 * b * lung_r)
        e(img, v[T.LUNG], 0.42 * a, cy - 0.02 * b, 0.36 * a * lung_l, 0.72 * b * lung_l)
        # Vessels drift across the slice as z changes, each field its own way, kept to the lungs.
        big, small = self.vessels
        shift = round(0.4 * z / self.ps), round(0.3 * z / self.ps)
        vessels = np.roll(big, shift, axis=(0, 1))
        vessels |= np.roll(small, (-shift[1], shift[0]), axis=(0, 1))
        img[vessels & (img == v[T.LUNG])] = v[T.BLOOD]
        liver = _ramp(t, 0.72, 0.25)
        e(img, v[T.LIVER], -0.3 * a, cy - 0.05 * b, 0.55 * a * liver, 0.62 * b * liver)
        heart = math.sin(math.pi * _ramp(t, 0.38, 0.55))
        if heart > 0.05:  # with a rim of epicardial fat
            e(img, v[T.FAT], 0.1 * a, cy - 0.18 * b, 0.4 * a * heart + 4, 0.48 * b * heart + 4)
            e(img, v[T.BLOOD], 0.1 * a, cy - 0.18 * b, 0.4 * a * heart, 0.48 * b * heart)
        if t > 0.12:
            e(img, v[T.BLOOD], 0.13 * a, cy + 0.36 * b, 11 * s, 11 * s)  # descending aorta
        if 0.12 < t < 0.22:
            e(img, v[T.BLOOD], 0.04 * a, cy + 0.1 * b, 14 * s, 0.3 * b)  # arch
        elif 0.22 <= t < 0.45:
            e(img, v[T.BLOOD], -0.02 * a, cy - 0.12 * b, 15 * s, 15 * s)  # ascending aorta
        if t < 0.3:  # trachea, then the main bronchi
            e(img, v[T.SOFT], 0, cy + 0.12 * b, 10, 10)
            e(img, v[T.AIR], 0, cy + 0.12 * b, 7.5, 7)
        elif t < 0.4:
            e(img, v[T.AIR], -14, cy + 0.12 * b, 5, 4.5)
            e(img, v[T.AIR], 14, cy + 0.12 * b, 5, 4.5)
        sy, r = cy + 0.5 * b, 17 * s  # vertebra: body, discs every ~28 mm, arch, spinous process
        e(img, v[T.CORTEX], 0, sy, r, 0.9 * r)
        e(img, v[T.DISC] if z % 28 < 5 else v[T.BONE], 0, sy, r - 2.5, 0.9 * r - 2.5)
        e(img, v[T.CORTEX], 0, sy + r + 9, 15, 10)
        e(img, v[T.CSF], 0, sy + r + 9, 7, 6)
        e(img, v[T.CORTEX], 0, sy + r + 24, 4.5, 10)
        e(img, v[T.CORTEX], 0, cy - 0.86 * b + 4, 14, 5)  # sternum
        dz = (t - 0.35) * self.span
        if abs(dz) < self.nodule_mm:  # a solid nodule in the right upper lobe, for follow-ups
            rn, (nx, ny) = math.sqrt(self.nodule_mm**2 - dz**2), self.nodule_at
            e(img, v[T.SOFT], (-0.42 + nx) * a, cy + ny * b, rn, rn)

    def _head(self, img: np.ndarray, t: float, z: float, v: np.ndarray) -> None:
        s, e, x, y = self.scale, self._ellipse, self.x, self.y
        shape = math.sqrt(max(0.0, 1 - ((t - 0.62) / 0.66) ** 2))  # ellipsoid cut at the vertex
        a, b = 74 * s * shape, 94 * s * shape
        for inset, tissue in ((0, T.SKIN), (2.5, T.FAT), (5, T.SKULL), (7, T.DIPLOE), (9, T.SKULL)):
            e(img, v[tissue], 0, 0, a - inset, b - inset)
        ba, bb = a - 11, b - 11
        if ba <= 0:
            return
        rho = (x / ba)[None, :] ** 2 + (y / bb)[:, None] ** 2
        brain = rho <= 1
        img[brain] = v[T.GM]
        # Gyri: white matter reaches into the cortex at the crests, sulci cut in at the troughs.
        crest = self._crest(z / 6)
        img[rho <= (0.62 + 0.18 * crest**2) ** 2] = v[T.WM]
        img[brain & (rho > 0.84**2) & (crest < 0.1)] = v[T.CSF]
        img[brain & (np.abs(x) < 1.2)[None, :] & (np.abs(y) > 0.35 * bb)[:, None]] = v[T.CSF]
        deep = math.sin(math.pi * _ramp(t, 0.4, 0.3)) ** 0.5
        vent = math.sin(math.pi * _ramp(t, 0.3, 0.35))
        for side in (-1, 1):
            e(img, v[T.GM], side * 0.25 * ba, 8, 9 * deep, 14 * deep)  # basal ganglia, thalamus
            e(img, v[T.CSF], side * (5 + 4 * vent), -6, 3 + 5 * vent, 0.28 * bb * vent)
        if 0.5 < t < 0.68:
            e(img, v[T.CSF], 0, 6, 1.8, 10 * deep)  # third ventricle
        if 0.72 < t < 0.9:
            e(img, v[T.CSF], 0, 0.3 * bb, 5, 3.5)  # fourth ventricle
        base = _ramp(t, 0.8, 0.2)
        if base > 0:  # skull base with the sinuses in front and the petrous bones laterally
            e(img, v[T.SKULL], 0, -0.55 * bb, 0.7 * ba, 0.45 * bb * base)
            e(img, v[T.AIR], 0, -0.62 * bb, 0.35 * ba * base, 0.15 * bb * base)
            for side in (-1, 1):
                e(img, v[T.SKULL], side * 0.5 * ba, 0.05 * bb, 2 + 7 * base, 22 * base)


def _smooth(a: np.ndarray) -> np.ndarray:
    """Blur an integer image with a separable [1 2 1]/4 kernel, edges kept: softer edges and
    correlated noise, as from a soft reconstruction kernel."""
    b = a.copy()
    for axis in (1, 0):
        src, inner = b.copy(), b[:, 1:-1] if axis else b[1:-1]
        inner += src[:, 1:-1] if axis else src[1:-1]
        inner += src[:, :-2] if axis else src[:-2]
        inner += src[:, 2:] if axis else src[2:]
        inner >>= 2
    return b


def _slice_rng(seed: int, series: int, index: int) -> np.random.Generator:
    # One generator per slice, so that any slice can be made on its own and still match.
    return np.random.default_rng([seed % 2**64, series, index])


def _ct_slice(
    ph: _Phantom, t: float, z: float, rng: np.random.Generator, recon: tuple
) -> np.ndarray:
    """Return one CT slice in HU (int16) with the noise of the reconstruction kernel."""
    img = ph.paint(t, z, CT_HU)
    # Uniform random bytes are ~10x cheaper than normal variates; the smoothing sums nine of them,
    # which makes the noise close to Gaussian.
    noise = np.frombuffer(rng.bytes(img.size), np.int8).reshape(img.shape).astype(np.int16)
    noise *= recon[4]  # raw sigma is 74: level 8 gives 18 HU, smoothing then divides by ~2.7
    noise >>= 5
    img += noise
    return img if recon[5] else _smooth(img)


def _mr_slice(
    ph: _Phantom, t: float, z: float, rng: np.random.Generator, weighting: str
) -> np.ndarray:
    """Return one MR magnitude slice (uint16) with coil shading and Rician noise."""
    img = ph.paint(t, z, MR_SIGNAL[weighting]).astype(np.float32)
    shading = 1 + 0.08 * ph.x[None, :] / 120 - 0.1 * (ph.y[:, None] / 120) ** 2
    img = _smooth((img * shading).astype(np.int16)).astype(np.float32)
    n = rng.standard_normal((2, *img.shape), dtype=np.float32) * 12
    return np.clip(np.rint(np.hypot(img + n[0], n[1])), 0, 4095).astype(np.uint16)


def ct_volume(shape: tuple[int, int, int], seed: int, body_part: str = "CHEST") -> np.ndarray:
    """Return a (slices, rows, columns) CT phantom volume in HU as int16."""
    n, rows, columns = shape
    ph = _Phantom(simple_spec(seed=seed, slices=n, rows=rows, columns=columns, body_part=body_part))
    recon = CT_RECONS["HEAD" if ph.head else "BODY"][0]
    rngs = [_slice_rng(seed, 0, i) for i in range(n)]
    return np.stack([_ct_slice(ph, _t(i, n), -i * ph.thickness, rngs[i], recon) for i in range(n)])


def mr_volume(shape: tuple[int, int, int], seed: int, weighting: str = "T1") -> np.ndarray:
    """Return a (slices, rows, columns) head MR phantom volume as uint16."""
    n, rows, columns = shape
    ph = _Phantom(simple_spec(seed=seed, modality="MR", slices=n, rows=rows, columns=columns))
    rngs = [_slice_rng(seed, 0, i) for i in range(n)]
    return np.stack(
        [_mr_slice(ph, _t(i, n), -i * ph.thickness, rngs[i], weighting) for i in range(n)]
    )


def _t(i: int, n: int) -> float:
    return i / (n - 1) if n > 1 else 0.5


def _uid(seed: int, *parts: object) -> str:
    # generate_uid(prefix=None) ignores entropy_srcs and returns a random UUID, and the prefix
    # "2.25." would append a 512-bit hash that is no UUID; so build the same 2.25.<UUID> form
    # from a name-based UUID, as PS3.5 B.2 allows.
    name = "/".join(["skylight-synthetic", str(seed), *map(str, parts)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, name).int}"


def study_uid(spec: StudySpec) -> str:
    """Return the Study Instance UID, derived from the seed alone."""
    return _uid(spec.seed, "study")


def _ds(value: float) -> str:
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _when(date: str, time: str, seconds: float) -> tuple[str, str]:
    moment = dt.datetime.strptime(date + time[:6], "%Y%m%d%H%M%S") + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")


def _age(birth: str, on: str) -> str:
    b, d = dt.datetime.strptime(birth, "%Y%m%d"), dt.datetime.strptime(on, "%Y%m%d")
    return f"{max(0, d.year - b.year - ((d.month, d.day) < (b.month, b.day))):03d}Y"


def _series(spec: StudySpec, ph: _Phantom, k: int) -> tuple[pydicom.Dataset, tuple]:
    """Return the attributes shared by the instances of series k and its contrast/recon."""
    mr, p, modality = spec.modality.upper() == "MR", spec.patient, spec.modality.upper()
    date, time = _when(spec.study_date, spec.study_time, 60 + 300 * k)
    # fmt: off
    attributes: dict[str, object] = {
        "SpecificCharacterSet": "ISO_IR 100", "SOPClassUID": MRImageStorage if mr else CTImageStorage,
        "InstanceCreationDate": date, "InstanceCreationTime": time,
        "StudyDate": spec.study_date, "StudyTime": spec.study_time[:6], "SeriesDate": date,
        "SeriesTime": time, "AcquisitionDate": date, "AcquisitionTime": time,
        "ContentDate": date, "ContentTime": time,
        "AccessionNumber": spec.accession_number, "Modality": modality,
        "Manufacturer": MANUFACTURER, "InstitutionName": INSTITUTION,
        "ReferringPhysicianName": spec.referring_physician, "StationName": f"SKYSYN-{modality}1",
        "StudyDescription": spec.description, "ProtocolName": spec.description,
        "ManufacturerModelName": "Phantom MR 1.5T" if mr else "Phantom CT 64",
        "DeviceSerialNumber": "SYN0001", "SoftwareVersions": "skylight-synthetic 1",
        "PatientName": p.patient_name, "PatientID": p.patient_id, "IssuerOfPatientID": ISSUER,
        "PatientBirthDate": p.birth_date, "PatientSex": p.sex,
        "PatientAge": _age(p.birth_date, spec.study_date),
        "BodyPartExamined": spec.body_part.upper(), "PatientPosition": "HFS",
        "SliceThickness": _ds(ph.thickness),
        "StudyInstanceUID": study_uid(spec), "SeriesInstanceUID": _uid(spec.seed, "series", k),
        "StudyID": str(spec.seed % 100000), "SeriesNumber": k + 1, "AcquisitionNumber": 1,
        "FrameOfReferenceUID": _uid(spec.seed, "frame-of-reference"),
        "PositionReferenceIndicator": "", "PatientOrientation": "",
        "BurnedInAnnotation": "NO", "LossyImageCompression": "00",
        "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"],
        "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
        "Rows": spec.rows, "Columns": spec.columns, "PixelSpacing": [_ds(ph.ps)] * 2,
        "BitsAllocated": 16, "BitsStored": 12, "HighBit": 11, "PixelRepresentation": 0,
    }
    contrast: tuple[Any, ...]
    if mr:
        contrast = weighting, desc, scan, name, tr, te, ti, etl, flip = MR_SEQUENCES[k % len(MR_SEQUENCES)]
        attributes |= {
            "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"], "SeriesDescription": desc,
            "ScanningSequence": scan, "SequenceVariant": ["SK", "SP"], "ScanOptions": "",
            "MRAcquisitionType": "2D", "SequenceName": name, "RepetitionTime": _ds(tr),
            "EchoTime": _ds(te), "EchoTrainLength": etl, "NumberOfAverages": "1",
            "ImagingFrequency": "63.87", "ImagedNucleus": "1H", "EchoNumbers": "1",
            "MagneticFieldStrength": "1.5", "SpacingBetweenSlices": _ds(ph.thickness),
            "PixelBandwidth": "130", "ReceiveCoilName": "HEAD 8CH", "TransmitCoilName": "BODY",
            "AcquisitionMatrix": [0, spec.columns, spec.rows * 3 // 4, 0],
            "InPlanePhaseEncodingDirection": "ROW", "FlipAngle": _ds(flip),
            "WindowCenter": "500" if weighting == "T1" else "600",
            "WindowWidth": "1000" if weighting == "T1" else "1200",
        } | ({"InversionTime": _ds(ti)} if ti else {})
    else:
        recons = CT_RECONS["HEAD" if ph.head else "BODY"]
        contrast = desc, kernel, centre, width, _, _ = recons[k % len(recons)]
        attributes |= {
            "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"], "SeriesDescription": desc,
            "KVP": "120", "XRayTubeCurrent": 300 if ph.head else 200, "ExposureTime": 1000,
            "Exposure": 300 if ph.head else 100, "ConvolutionKernel": kernel,
            "DataCollectionDiameter": "500", "ReconstructionDiameter": _ds(ph.ps * max(spec.rows, spec.columns)),
            "GantryDetectorTilt": "0", "TableHeight": "150", "RotationDirection": "CW",
            "SpiralPitchFactor": 0.984375, "CTDIvol": 45.0 if ph.head else 8.5,
            "RescaleIntercept": "-1024", "RescaleSlope": "1", "RescaleType": "HU",
            "WindowCenter": _ds(centre), "WindowWidth": _ds(width),
        }
    # fmt: on
    template = pydicom.Dataset()
    for keyword, value in attributes.items():
        setattr(template, keyword, value)
    return template, contrast


def iter_study(spec: StudySpec) -> Iterator[pydicom.Dataset]:
    """Yield every instance of the study, series by series, as Explicit VR Little Endian."""
    if spec.modality.upper() not in ("CT", "MR"):
        raise ValueError(f"unsupported modality {spec.modality!r}")
    ph = _Phantom(spec)
    z_top = round(ph.span / 2, 4)
    x0, y0 = _ds(-(spec.columns - 1) / 2 * ph.ps), _ds(-(spec.rows - 1) / 2 * ph.ps)
    for k in range(spec.series_count):
        template, contrast = _series(spec, ph, k)
        for i in range(spec.slices):
            t, z, rng = _t(i, spec.slices), z_top - i * ph.thickness, _slice_rng(spec.seed, k, i)
            if spec.modality.upper() == "MR":
                pixels = _mr_slice(ph, t, z, rng, contrast[0])
            else:  # stored = HU + 1024 in 12 bits; in place, then reinterpreted without a copy
                pixels = _ct_slice(ph, t, z, rng, contrast)
                pixels += 1024
                pixels = np.clip(pixels, 0, 4095, out=pixels).view(np.uint16)
            # Share the series' elements; the setters below replace elements, never mutate them.
            ds = pydicom.Dataset(dict(template.items()))
            ds.SOPInstanceUID = _uid(spec.seed, "instance", k, i)
            ds.InstanceNumber = i + 1
            ds.ImagePositionPatient = [x0, y0, _ds(z)]
            ds.SliceLocation = _ds(z)
            ds.add_new(0x7FE00010, "OW", pixels.astype("<u2", copy=False).tobytes())
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
            ds.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
            yield ds


def encode_part10(ds: pydicom.Dataset) -> bytes:
    """Return the Part 10 bytes (preamble, File Meta, data set) of a dataset."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def write_study(spec: StudySpec, out_dir: str | os.PathLike) -> list[Path]:
    """Write the study as out_dir/<series>/<instance>.dcm and return the paths in order."""
    paths = []
    for ds in iter_study(spec):
        path = Path(out_dir) / f"{ds.SeriesNumber:03d}" / f"{ds.InstanceNumber:04d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_part10(ds))
        paths.append(path)
    return paths


def simple_spec(
    *,
    seed: int = 1,
    modality: str = "CT",
    slices: int = 60,
    rows: int = 512,
    columns: int = 512,
    series_count: int = 1,
    patient_id: str = "SYN-0001",
    body_part: str | None = None,
) -> StudySpec:
    """Return a spec with plausible values for everything a caller does not care about."""
    mr = modality.upper() == "MR"
    return StudySpec(
        seed=seed,
        patient=PatientSpec(patient_id, f"SYNTHETIC^{patient_id}", "19700101", "O"),
        modality=modality.upper(),
        description="MR BRAIN" if mr else "CT CHEST",
        accession_number=f"SYN{seed % 10**8:08d}",
        study_date=(dt.date(2024, 1, 1) + dt.timedelta(days=seed % 365)).strftime("%Y%m%d"),
        study_time="093000",
        referring_physician="SYNTHETIC^REFERRER",
        body_part=(body_part or ("HEAD" if mr else "CHEST")).upper(),
        slices=slices,
        rows=rows,
        columns=columns,
        series_count=series_count,
    )


def demo_studies() -> list[StudySpec]:
    """Return the demo set: five studies of four clearly fictitious patients (~138 MB)."""
    alice = PatientSpec("SKY-DEMO-0001", "DEMO^ALICE", "19620314", "F")
    bob = PatientSpec("SKY-DEMO-0002", "DEMO^BOB", "19750822", "M")
    carol = PatientSpec("SKY-DEMO-0003", "DEMO^CAROL", "19880105", "F")
    david = PatientSpec("SKY-DEMO-0004", "DEMO^DAVID", "19491130", "M")
    chest, house, grey = "CT CHEST WITHOUT CONTRAST", "DEMO^HOUSE^^DR", "DEMO^GREY^^DR"
    # fmt: off
    return [
        StudySpec(1001, alice, "CT", chest, "DEMO0001", "20250310", "091500", house, "CHEST", 120),
        # Alice's prior, a year earlier: same anatomy (from the patient), smaller nodule.
        StudySpec(1002, alice, "CT", chest, "DEMO0002", "20240305", "142000", house, "CHEST", 120, 256, 256),
        StudySpec(1003, bob, "CT", "CT HEAD WITHOUT CONTRAST", "DEMO0003", "20250311", "230500", grey, "HEAD", 60),
        StudySpec(1004, carol, "MR", "MRI BRAIN WITHOUT CONTRAST", "DEMO0004", "20250312", "104500", grey, "BRAIN", 24, 256, 256, 2),
        StudySpec(1005, david, "CT", "CT CHEST LOW DOSE SCREENING", "DEMO0005", "20250312", "161000", house, "CHEST", 80, 256, 256, 2),
    ]
    # fmt: on
