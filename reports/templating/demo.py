"""The demo's report templates and text blocks (called by ``seed_demo``; idempotent)."""

from __future__ import annotations

from typing import Any

from tenants import audit
from tenants.models import ReadingGroup, Tenant

from . import services
from .models import ReportTemplate, TextBlock

HOSPITAL_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "CT chest",
        "modality": "CT",
        "body_part": "CHEST",
        "description": "Routine CT of the chest, with or without contrast.",
        "clinical_information": "[[indication:text]]",
        "technique": "Axial CT images of the chest [[contrast:with*|without]] intravenous "
        "contrast, with multiplanar reformats.",
        "comparison": "[[comparison:text:None.]]",
        "findings": "Lungs: [[lungs:text:Clear. No nodule, consolidation or effusion.]]\n"
        "Largest nodule: [[nodule_size:number]] mm, [[nodule_side:none*|left|right|bilateral]].\n"
        "Mediastinum: [[mediastinum:text:No lymphadenopathy.]]\n"
        "Heart and great vessels: [[heart:text:Normal size. No pericardial effusion.]]\n"
        "Bones: [[bones:text:No suspicious lesion.]]",
        "impression": "[[impression:text:No acute cardiopulmonary abnormality.]]",
    },
    {
        "name": "MR brain",
        "modality": "MR",
        "body_part": "HEAD",
        "description": "MR brain without and with gadolinium.",
        "clinical_information": "[[indication:text]]",
        "technique": "Multiplanar multisequence MR of the brain [[gadolinium:without and with*"
        "|without]] gadolinium.",
        "comparison": "[[comparison:text:None.]]",
        "findings": "Brain parenchyma: [[parenchyma:text:Normal signal. No restricted diffusion.]]"
        "\nVentricles: [[ventricles:normal*|enlarged]].\n"
        "Extra-axial spaces: [[extra_axial:text:No collection.]]\n"
        "Enhancement: [[enhancement:none*|present]].",
        "impression": "[[impression:text:No acute intracranial abnormality.]]",
    },
    {
        "name": "General radiology report",
        "description": "For any study without a more specific template.",
        "clinical_information": "[[indication:text]]",
        "technique": "[[technique:text]]",
        "comparison": "[[comparison:text:None.]]",
        "findings": "[[findings:text]]",
        "impression": "[[impression:text]]",
    },
]

GROUP_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "CT head (non-contrast), teleradiology",
        "modality": "CT",
        "body_part": "HEAD",
        "description": "The demo readers' template for emergency head CT.",
        "clinical_information": "[[indication:text]]",
        "technique": "Non-contrast axial CT of the head.",
        "findings": "Haemorrhage: [[haemorrhage:none*|present]].\n"
        "Grey-white differentiation: [[grey_white:preserved*|lost]].\n"
        "Midline shift: [[midline_shift:number:0]] mm.\n"
        "Ventricles: [[ventricles:normal*|enlarged]].",
        "impression": "[[impression:text:No acute intracranial abnormality.]]",
    },
]

HOSPITAL_BLOCKS = {
    ".nochest": "No acute cardiopulmonary abnormality.",
    ".noacute": "No acute abnormality.",
}
GROUP_BLOCKS = {
    ".fu": "Follow-up imaging is recommended in *** months.",
    ".crit": "This critical result was communicated to the referring clinician by telephone.",
}


def seed_templates(tenants: dict[str, Tenant], group: ReadingGroup) -> None:
    """Templates and text blocks for the demo hospital and the demo-readers group. Safe to run
    again: what already exists (by name or shortcut) is left as it is."""
    actor = audit.Actor.system()
    demo = tenants["demo-hospital"]
    owners: list[tuple[Tenant | ReadingGroup, list[dict[str, Any]], dict[str, str]]] = [
        (demo, HOSPITAL_TEMPLATES, HOSPITAL_BLOCKS),
        (group, GROUP_TEMPLATES, GROUP_BLOCKS),
    ]
    for owner, templates, blocks in owners:
        owned = {"tenant": owner} if isinstance(owner, Tenant) else {"group": owner}
        for data in templates:
            if not ReportTemplate.objects.filter(**owned, name=data["name"]).exists():
                services.create_template(owner=owner, user=None, actor=actor, data=data)
        for shortcut, text in blocks.items():
            if not TextBlock.objects.filter(**owned, shortcut=shortcut).exists():
                services.create_block(
                    owner=owner, actor=actor, data={"shortcut": shortcut, "text": text}
                )
