"""What the reports API sends and accepts. Signed versions are shown to everyone who may see the
report; a draft only to its author."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tenants.models import User

from .models import SECTIONS, Kind, ReportVersion, Status


def person(user: User | None) -> dict[str, str] | None:
    if user is None:
        return None
    return {"username": user.username, "name": str(user)}


def etag_of(version: ReportVersion) -> str:
    """The draft's ETag: when it was last saved. A save that names an older one is stale."""
    return f'"{version.updated_at.isoformat()}"'


class SignerSerializer(serializers.Serializer):
    username = serializers.CharField()
    name = serializers.CharField()


class ReportSectionsSerializer(serializers.Serializer):
    clinical_information = serializers.CharField(allow_blank=True, required=False)
    technique = serializers.CharField(allow_blank=True, required=False)
    comparison = serializers.CharField(allow_blank=True, required=False)
    findings = serializers.CharField(allow_blank=True, required=False)
    impression = serializers.CharField(allow_blank=True, required=False)


class KeyImageSerializer(serializers.Serializer):
    series = serializers.CharField(help_text="Series Instance UID")
    instance = serializers.CharField(help_text="SOP Instance UID")
    frame = serializers.IntegerField(min_value=1, required=False)
    caption = serializers.CharField(allow_blank=True, required=False)


class VersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    status = serializers.ChoiceField(choices=Status.choices)
    sections = ReportSectionsSerializer()
    key_images = KeyImageSerializer(many=True)
    author = SignerSerializer()
    signed_by = SignerSerializer(allow_null=True)
    signed_at = serializers.DateTimeField(allow_null=True)
    content_sha256 = serializers.CharField(
        help_text="SHA-256 of what was signed; empty in a draft."
    )
    supersedes = serializers.IntegerField(
        allow_null=True, help_text="The number of the version this one follows on from."
    )
    updated_at = serializers.DateTimeField()
    etag = serializers.CharField(help_text="Send it back as If-Match to save this draft.")

    def to_representation(self, instance: ReportVersion) -> dict[str, Any]:
        supersedes = getattr(self.context.get("numbers"), "get", lambda _k: None)(
            instance.supersedes_id
        )
        return {
            "number": instance.number,
            "kind": instance.kind,
            "status": instance.status,
            "sections": instance.sections(),
            "key_images": instance.key_images,
            "author": person(instance.author),
            "signed_by": person(instance.signed_by),
            "signed_at": instance.signed_at.isoformat() if instance.signed_at else None,
            "content_sha256": instance.content_sha256,
            "supersedes": supersedes,
            "updated_at": instance.updated_at.isoformat(),
            "etag": etag_of(instance),
        }


class ReviewRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField(help_text="The work item of the report.")
    hospital = serializers.CharField()
    version = serializers.IntegerField(help_text="The number of the preliminary to validate.")
    requested_by = SignerSerializer()
    reviewer = SignerSerializer(allow_null=True, help_text="None: any radiologist of the hospital.")
    message = serializers.CharField(allow_blank=True)
    state = serializers.CharField(help_text="open, validated, returned or cancelled.")
    comments = serializers.CharField(allow_blank=True)
    decided_by = SignerSerializer(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {
            "id": instance.pk,
            "item": instance.report.work_item_id,
            "hospital": instance.tenant.name,
            "version": instance.version.number,
            "requested_by": person(instance.requested_by),
            "reviewer": person(instance.reviewer),
            "message": instance.message,
            "state": instance.state,
            "comments": instance.comments,
            "decided_by": person(instance.decided_by),
            "decided_at": instance.decided_at.isoformat() if instance.decided_at else None,
            "created_at": instance.created_at.isoformat(),
        }


class ReviewRequestDetailSerializer(ReviewRequestSerializer):
    preliminary = VersionSerializer()
    patient = serializers.CharField(help_text="The patient's name as DICOM writes it (PN).")
    study_description = serializers.CharField()
    clinical_question = serializers.CharField(allow_blank=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        item = instance.report.work_item
        return {
            **super().to_representation(instance),
            "preliminary": VersionSerializer(instance.version).data,
            "patient": item.patient_name,
            "study_description": item.study_description,
            "clinical_question": item.clinical_question,
        }


class ReportSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    report = serializers.IntegerField(allow_null=True, help_text="None until the first save.")
    status = serializers.CharField(
        allow_null=True, help_text="draft, preliminary, final, addendum or correction."
    )
    hl7_obr25 = serializers.CharField(
        allow_null=True, help_text="HL7 v2 OBR-25 result status (P, F, C, A); none for a draft."
    )
    fhir_status = serializers.CharField(
        allow_null=True, help_text="FHIR R4 DiagnosticReport.status."
    )
    current = VersionSerializer(allow_null=True, help_text="The newest signed version.")
    draft = VersionSerializer(allow_null=True, help_text="Your open draft, if you have one.")
    draft_by_other = SignerSerializer(
        allow_null=True, help_text="Someone else is writing a draft of this report."
    )
    versions = VersionSerializer(many=True, help_text="The signed versions, oldest first.")
    review = ReviewRequestSerializer(allow_null=True, help_text="The open review request.")
    needs_validation = serializers.BooleanField(
        help_text="Your preliminary must be validated by a hospital radiologist to become final."
    )
    reviewers = SignerSerializer(many=True, help_text="The hospital's radiologists.")


class DraftSerializer(ReportSectionsSerializer):
    key_images = KeyImageSerializer(many=True, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown report sections: {', '.join(unknown)}. The sections are "
                f"{', '.join(SECTIONS)}."
            )
        return attrs


class SignSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[Status.PRELIMINARY, Status.FINAL])
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    mfa_code = serializers.CharField(required=False, allow_blank=True)
    send_for_review = serializers.BooleanField(
        default=False, help_text="After signing a preliminary, send it for validation."
    )
    reviewer = serializers.CharField(
        required=False, allow_blank=True, help_text="Username of the hospital radiologist."
    )
    message = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class FinaliseSerializer(serializers.Serializer):
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    mfa_code = serializers.CharField(required=False, allow_blank=True)
    sections = ReportSectionsSerializer(required=False)


class ChangeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[Kind.ADDENDUM, Kind.CORRECTION])


class ReviewAskSerializer(serializers.Serializer):
    reviewer = serializers.CharField(
        required=False, allow_blank=True, help_text="Username; empty: any hospital radiologist."
    )
    message = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ValidateSerializer(FinaliseSerializer):
    comments = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class ReturnSerializer(serializers.Serializer):
    comments = serializers.CharField(max_length=4000)


class PolicySerializer(serializers.Serializer):
    hospital = serializers.CharField(read_only=True)
    requires_validation = serializers.BooleanField()


SECTION_NAMES = SECTIONS
