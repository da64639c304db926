"""PS3.15 Annex E Basic Application Level Confidentiality Profile, applied to a pydicom Dataset.

No installable library does this here (``deid`` and ``dicognito`` are not on the package index
we can reach; pydicom and highdicom have none), so the profile is the standard's table
(``table.py``) and the few rules below. A ``Recipe`` carries everything that makes one share's
output consistent: the options, a secret and a scope for the UID map, the pseudonym's seed and
the date offset. The same source UID always maps to the same new UID under one recipe, so
references between instances (Referenced SOP Instance UID in sequences, Frame of Reference UID,
the study and series UIDs) still point at each other.

Beyond the table we remove every private attribute, every person name the table does not list,
and replace every UID that is not a well-known DICOM UID: an attribute the table missed cannot
carry an identity out.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from .table import Row, row_for

# The UIDs the standard defines (SOP classes, transfer syntaxes, coding schemes) identify nobody.
WELL_KNOWN_ROOT = "1.2.840.10008."

DATES_REMOVE, DATES_KEEP, DATES_SHIFT = "remove", "keep", "shift"
DATE_CHOICES = [
    (DATES_REMOVE, "Remove dates and times (the basic profile)"),
    (DATES_SHIFT, "Shift dates by a random offset, the same for every study of a share"),
    (DATES_KEEP, "Keep the real dates and times"),
]

# CID 7050 De-identification Method: the profile and each option we apply.
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES = {
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    DATES_KEEP: ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    DATES_SHIFT: ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
}

# What a dummy (D) value is, per VR. Dates and times are the epoch of DICOM-like nothing.
_DUMMY: dict[str, Any] = {
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "PN": "Anonymized",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "FL": 0.0,
    "FD": 0.0,
}
_TEXT_VRS = {"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UT", "UR"}
_FREE_TEXT_VRS = {"LO", "LT", "SH", "ST", "UC", "UT"}


@dataclass(frozen=True)
class Options:
    """The profile's options a tenant chooses (DeidPolicy holds them, a share keeps a copy)."""

    retain_patient_characteristics: bool = False
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    clean_descriptors: bool = False
    dates: str = DATES_REMOVE

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Options:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def codes(self) -> list[tuple[str, str]]:
        chosen = [BASIC_PROFILE_CODE]
        for name, code in OPTION_CODES.items():
            if name in (DATES_KEEP, DATES_SHIFT):
                if self.dates == name:
                    chosen.append(code)
            elif getattr(self, name):
                chosen.append(code)
        return chosen


@dataclass(frozen=True)
class Recipe:
    """One share's de-identification: options, the UID map's secret and scope, date offset."""

    options: Options
    secret: bytes
    scope: str  # e.g. "<tenant id>|<share key>": another scope maps every UID elsewhere
    date_offset_days: int = 0
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def uid(self, original: str) -> str:
        """``2.25.`` and 128 bits of HMAC-SHA256(secret, scope|uid): a UUID-derived UID (PS3.5
        B.2), the same for the same source within the scope, unrelated across scopes."""
        original = original.strip().rstrip("\x00")
        if not original or original.startswith(WELL_KNOWN_ROOT):
            return original
        mapped = self._cache.get(original)
        if mapped is None:
            digest = hmac.new(
                self.secret, f"{self.scope}|{original}".encode(), hashlib.sha256
            ).digest()
            mapped = f"2.25.{int.from_bytes(digest[:16], 'big')}"
            self._cache[original] = mapped
        return mapped

    def pseudonym(self, patient_id: str) -> str:
        """The patient's stand-in ID within the share (names nobody, the same for the patient)."""
        digest = hmac.new(
            self.secret, f"{self.scope}|patient|{patient_id}".encode(), hashlib.sha256
        ).hexdigest()
        return f"DEID-{digest[:10].upper()}"


# ---------------------------------------------------------------------------------------------
# Burned-in annotation
# ---------------------------------------------------------------------------------------------

# Modalities whose images commonly carry the patient's name or ID in the pixels.
BURNED_IN_MODALITIES = {"US", "SC", "XA", "RF", "ES", "XC", "OT", "DOC", "GM", "IVUS", "OP"}
# Secondary capture, ultrasound, endoscopy/photography and scanned documents.
BURNED_IN_SOP_CLASS_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.7",  # secondary capture, and its multi-frame variants
    "1.2.840.10008.5.1.4.1.1.6.",  # ultrasound (and multi-frame)
    "1.2.840.10008.5.1.4.1.1.3.1",  # ultrasound multi-frame
    "1.2.840.10008.5.1.4.1.1.77.1.",  # visible light images
)
DOCUMENT_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.104."  # encapsulated PDF, CDA, STL ...


def burned_in_reason(ds: Dataset) -> str:
    """Why this instance may show identifying text in its pixels (or document), or "".

    Burned In Annotation (0028,0301) decides when it says YES or NO; any other value is unknown
    and flagged; absent, the modality and SOP class decide."""
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if sop_class.startswith(DOCUMENT_SOP_CLASS_PREFIX):
        return "an encapsulated document, whose text the profile cannot clean"
    raw = ds.get("BurnedInAnnotation")
    if raw is not None:
        value = str(raw or "").strip().upper()
        if value == "YES":
            return "Burned In Annotation is YES"
        if value == "NO":
            return ""
        return "Burned In Annotation has an unknown value"
    modality = str(ds.get("Modality", "") or "").upper()
    if modality in BURNED_IN_MODALITIES:
        return f"{modality} images often carry burned-in text and this one does not say"
    if sop_class.startswith(BURNED_IN_SOP_CLASS_PREFIXES):
        return "its kind of image often carries burned-in text and this one does not say"
    return ""


# ---------------------------------------------------------------------------------------------
# The profile
# ---------------------------------------------------------------------------------------------


def action_for(row: Row | None, options: Options) -> str:
    """The action for an attribute's row under these options; K for attributes not listed."""
    if row is None:
        return "K"
    for letter in row.options:
        if letter == "I" and options.retain_institution_identity:
            return "K"
        if letter == "V" and options.retain_device_identity:
            return "K"
        if letter == "P" and options.retain_patient_characteristics:
            return "K"
        if letter == "p" and options.retain_patient_characteristics:
            return "C"
        if letter == "T" and options.dates == DATES_KEEP:
            return "K"
        if letter == "T" and options.dates == DATES_SHIFT:
            return "C"
        if letter == "C" and options.clean_descriptors:
            return "C"
    # Combined codes: we keep the attribute in the form the IOD tolerates best, which is the
    # last choice the standard allows (an empty or dummy value rather than no attribute).
    return {"X/Z": "Z", "X/D": "D", "Z/D": "Z", "X/Z/D": "Z", "X/Z/U*": "U"}.get(
        row.action, row.action
    )


class _Walk:
    """One data set's de-identification: the identifying words to clean from descriptors come
    from the data set itself, read before anything is changed."""

    def __init__(self, recipe: Recipe, ds: Dataset) -> None:
        self.recipe = recipe
        self.options = recipe.options
        words: set[str] = set()
        for keyword in (
            "PatientName",
            "PatientID",
            "OtherPatientIDs",
            "AccessionNumber",
            "InstitutionName",
            "ReferringPhysicianName",
            "PatientBirthDate",
            "PatientAddress",
        ):
            try:
                value = ds.get(keyword)
            except Exception:  # noqa: BLE001 - an unreadable value adds no words
                continue
            for text in _texts(value):
                words.update(w for w in re.split(r"[\^\s,=]+", text) if len(w) >= 3)
        self.identifying = (
            re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.I)
            if words
            else None
        )

    def dataset(self, ds: Dataset) -> None:
        for tag in list(ds.keys()):
            if BaseTag(tag).is_private:
                del ds[tag]  # private attributes and their creators: never read, always gone
                continue
            try:
                element = ds[tag]
            except Exception:  # noqa: BLE001 - a value pydicom cannot read is not sent either
                del ds[tag]
                continue
            self.element(ds, element)

    def element(self, ds: Dataset, element: DataElement) -> None:
        row = row_for(int(element.tag))
        action = action_for(row, self.options)
        vr = element.VR
        if row is None and vr == "PN" and element.tag != 0x00100010:
            action = "X"  # a person's name the table does not list: still a person's name
        if row is None and vr == "UR":
            action = "X"  # an address may name anything, the original UIDs included
        if row is None and vr in ("DA", "DT", "TM"):
            # A date the table does not list (Instance Creation Date) follows the date option.
            action = {DATES_KEEP: "K", DATES_SHIFT: "C"}.get(self.options.dates, "Z")
        if row is None and vr == "UI":
            action = "U"  # well-known UIDs stay (Recipe.uid), anything else is remapped
        if action == "X":
            del ds[element.tag]
        elif action == "Z":
            element.value = Sequence() if vr == "SQ" else None
        elif action == "D":
            if vr == "SQ":
                self.items(element)
            elif vr == "UI":
                self.remap(element)
            else:
                element.value = _DUMMY.get(vr, "ANONYMIZED")
        elif action == "U":
            if vr == "SQ":
                self.items(element)
            elif vr == "UI":
                self.remap(element)
            else:
                element.value = None
        elif action == "C":
            self.clean(ds, element)
        elif vr == "SQ":  # K: a kept sequence's items are de-identified all the same
            self.items(element)
        elif row is None and vr in _FREE_TEXT_VRS:
            # Free text the table does not list (an SR's Text Value, a model name): kept, with
            # the patient's names and IDs taken out should someone have typed them in.
            element.value = self.scrub(element.value)

    def items(self, element: DataElement) -> None:
        for item in element.value or []:
            self.dataset(item)

    def remap(self, element: DataElement) -> None:
        value = element.value
        if value is None or value == "":
            return
        if isinstance(value, list | tuple) or getattr(value, "is_multi", False):
            element.value = [self.recipe.uid(str(v)) for v in value]
        else:
            element.value = self.recipe.uid(str(value))

    def clean(self, ds: Dataset, element: DataElement) -> None:
        vr = element.VR
        if vr == "SQ":
            self.items(element)
        elif vr in ("DA", "DT"):
            element.value = _shift(element.value, vr, self.recipe.date_offset_days)
        elif vr == "TM" or vr == "AS":
            return  # modified dates keep the time of day and the age
        elif vr in _TEXT_VRS:
            element.value = self.scrub(element.value)
        else:
            del ds[element.tag]  # nothing we know how to clean: the basic profile's removal

    def scrub(self, value: Any) -> Any:
        if self.identifying is None or value is None:
            return value
        if isinstance(value, list | tuple) or getattr(value, "is_multi", False):
            return [self.identifying.sub("", str(v)).strip() for v in value]
        return self.identifying.sub("", str(value)).strip()


def _texts(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple) or getattr(value, "is_multi", False):
        return [str(v) for v in value]
    return [str(value)]


def _shift(value: Any, vr: str, days: int) -> Any:
    """Dates (and date-times) moved by ``days``; a value that is not a date is removed."""
    if isinstance(value, list | tuple) or getattr(value, "is_multi", False):
        return [_shift(v, vr, days) for v in value]
    text = str(value or "").strip()
    if not text:
        return value
    try:
        moved = datetime.datetime.strptime(text[:8], "%Y%m%d") + datetime.timedelta(days=days)
    except ValueError:
        return None
    return moved.strftime("%Y%m%d") + (text[8:] if vr == "DT" else "")


def deidentify(ds: Dataset, recipe: Recipe) -> Dataset:
    """De-identify ``ds`` in place (and its File Meta) and return it."""
    original_patient_id = str(ds.get("PatientID", "") or "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings may quote values
        _Walk(recipe, ds).dataset(ds)
        pseudonym = recipe.pseudonym(original_patient_id)
        ds.PatientName = f"Anonymized^{pseudonym}"
        ds.PatientID = pseudonym
        ds.PatientIdentityRemoved = "YES"
        options = recipe.options
        ds.DeidentificationMethod = [meaning[:64] for _, meaning in options.codes()]
        codes = Sequence()
        for value, meaning in options.codes():
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            codes.append(item)
        ds.DeidentificationMethodCodeSequence = codes
        ds.LongitudinalTemporalInformationModified = {
            DATES_KEEP: "UNMODIFIED",
            DATES_SHIFT: "MODIFIED",
        }.get(options.dates, "REMOVED")
        meta = getattr(ds, "file_meta", None)
        if isinstance(meta, FileMetaDataset):
            for tag in list(meta.keys()):
                if int(tag) in (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102):
                    del meta[tag]  # AE titles and private information of the sender
            if "SOPInstanceUID" in ds:
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds
