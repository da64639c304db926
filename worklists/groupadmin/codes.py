"""Modality codes a person may name in an agreement or a privilege.

The defined terms of Modality (0008,0060), PS3.3 C.7.3.1.1.1, current and retired ones still
sent by older equipment. A typo ("CTT") is then a form error instead of a rule that never matches.
"""

from __future__ import annotations

MODALITY_CODES = frozenset(
    """
    ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DG DOC DX ECG EEG EMG EOG EPS ES FID GM HC
    HD IO IOL IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PA
    PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT
    RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC
    DS DF CD CF EC ST
    """.split()
)


def modality_list(value: object) -> list[str]:
    """["CT", "MR"] from "CT, mr" or ["CT", " mr"]; order kept, duplicates dropped."""
    items = (
        value if isinstance(value, list | tuple) else str(value or "").replace(";", ",").split(",")
    )
    seen: list[str] = []
    for raw in items:
        for code in str(raw).split():
            code = code.strip().upper()
            if code and code not in seen:
                seen.append(code)
    return seen


def unknown_modalities(codes: list[str]) -> list[str]:
    return [c for c in codes if c not in MODALITY_CODES]
