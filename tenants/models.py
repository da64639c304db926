"""Tenancy: hospitals (tenants), reading groups, who belongs where, API tokens and the audit log."""

from __future__ import annotations

import hashlib
import ipaddress
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class User(AbstractUser):
    """A person. What they may see comes from their memberships, never from this row alone."""

    display_name = models.CharField(max_length=150, blank=True)
    # How hospitals write this person's name in DICOM (PN, e.g. "WELBY^MARCUS"). A referring
    # physician sees the results of the studies of their hospitals that name them so.
    person_name = models.CharField(max_length=324, blank=True)

    def __str__(self) -> str:
        return self.display_name or self.username


# An AE title is 1-16 characters of the default character repertoire, without backslash or
# control characters, and not only spaces (PS3.5 6.2, VR AE). Leading/trailing spaces are not
# significant, so titles are stored stripped.
ae_title_validator = RegexValidator(
    regex=r"^[\x20-\x5b\x5d-\x7e]{1,16}$",
    message="An AE title is 1 to 16 printable ASCII characters without a backslash.",
)


def normalize_ae_title(value: str) -> str:
    return value.strip()


def default_quiet_period() -> int:
    return int(settings.SKYLIGHT["DEFAULT_QUIET_PERIOD_SECONDS"])


class Tenant(models.Model):
    """A hospital or imaging site. Owns every study, series, instance and audit row it produces."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    quiet_period_seconds = models.PositiveIntegerField(
        default=default_quiet_period,
        help_text="A study becomes ready to read after this many seconds without a new instance.",
    )
    # Where the hospital is, for licensing: a radiologist reads for it only with a licence valid
    # here. Blank: no licence is required (a hospital reading its own studies, say).
    jurisdiction = models.CharField(max_length=32, blank=True, help_text='e.g. "US-CA".')
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.slug


class CalledAETitle(models.Model):
    """An AE title that modalities call to send to this tenant; unique across the platform."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="called_ae_titles")
    ae_title = models.CharField(max_length=16, unique=True, validators=[ae_title_validator])

    class Meta:
        ordering = ["ae_title"]
        verbose_name = "called AE title"

    def save(self, *args: object, **kwargs: object) -> None:
        self.ae_title = normalize_ae_title(self.ae_title)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return self.ae_title


class AllowedCaller(models.Model):
    """One rule admitting DICOM peers: a calling AE title (blank = any) from a network (blank = any).

    A tenant with no rule admits nobody: connecting a modality is an explicit act.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="allowed_callers")
    ae_title = models.CharField(
        max_length=16,
        blank=True,
        validators=[ae_title_validator],
        help_text="Blank admits any calling AE title.",
    )
    network = models.CharField(
        max_length=64,
        blank=True,
        help_text="CIDR such as 10.20.0.0/16; blank admits any source address.",
    )
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["ae_title", "network"]

    def clean(self) -> None:
        if self.network:
            try:
                self.network = str(ipaddress.ip_network(self.network.strip(), strict=False))
            except ValueError:
                raise ValidationError(
                    {"network": "Enter a network such as 10.20.0.0/16 or 192.0.2.7/32."}
                ) from None

    def save(self, *args: object, **kwargs: object) -> None:
        self.ae_title = normalize_ae_title(self.ae_title)
        if self.network:
            self.network = str(ipaddress.ip_network(self.network.strip(), strict=False))
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.ae_title or 'any AE'} from {self.network or 'anywhere'}"

    def admits_ae(self, calling_ae: str) -> bool:
        return not self.ae_title or self.ae_title == normalize_ae_title(calling_ae)

    def admits_address(self, address: str) -> bool:
        if not self.network:
            return True
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(self.network)
        except ValueError:
            return False


class DicomDestination(models.Model):
    """A DICOM node this tenant lets C-MOVE send to: its AE title, host and port.

    C-MOVE names a destination by AE title only; the address comes from here, never from the
    request, so a caller cannot make Skylight send a tenant's images anywhere the tenant has not
    registered.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="dicom_destinations")
    ae_title = models.CharField(max_length=16, validators=[ae_title_validator])
    host = models.CharField(max_length=255, help_text="Host name or IP address.")
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ae_title"]
        verbose_name = "DICOM destination"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "ae_title"], name="destination_unique_tenant_ae"
            )
        ]

    def save(self, *args: object, **kwargs: object) -> None:
        self.ae_title = normalize_ae_title(self.ae_title)
        self.host = self.host.strip()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.ae_title} at {self.host}:{self.port}"


class AssociationStatus(models.Model):
    """The last association each calling AE title opened to this tenant, for the DICOM page.

    The SCP writes one row per (tenant, calling AE title) with an upsert as it accepts or rejects
    an association, so "when did the CT last call, from where, and was it let in" is one read of
    a handful of rows however much the modalities send. The audit log stays the record (every
    association is an audit row too); this is only its latest state per peer.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    calling_ae_title = models.CharField(max_length=16, blank=True)
    called_ae_title = models.CharField(max_length=16, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    accepted = models.BooleanField()
    # Why it was rejected, as a code of tenants/dicomconfig/status.py (REASONS); blank if accepted.
    reason = models.CharField(max_length=32, blank=True)
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "calling_ae_title"], name="association_status_unique_peer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.calling_ae_title or 'no AE'} {'accepted' if self.accepted else 'rejected'}"


class ReadingGroup(models.Model):
    """An organisation of radiologists that reads for one or more tenants under agreements."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    TENANT_ADMIN = "tenant_admin", "Tenant admin"
    RADIOLOGIST = "radiologist", "Radiologist"
    REFERRING_PHYSICIAN = "referring_physician", "Referring physician"
    TECHNOLOGIST = "technologist", "Technologist"
    GROUP_ADMIN = "group_admin", "Group admin"


TENANT_ROLES = {Role.TENANT_ADMIN, Role.RADIOLOGIST, Role.REFERRING_PHYSICIAN, Role.TECHNOLOGIST}
GROUP_ROLES = {Role.GROUP_ADMIN, Role.RADIOLOGIST}


class Membership(models.Model):
    """A user's role in exactly one tenant or one reading group."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    group = models.ForeignKey(
        ReadingGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(tenant__isnull=False, group__isnull=True)
                    | Q(tenant__isnull=True, group__isnull=False)
                ),
                name="membership_tenant_xor_group",
            ),
            models.UniqueConstraint(
                fields=["user", "tenant", "role"], name="membership_unique_tenant_role"
            ),
            models.UniqueConstraint(
                fields=["user", "group", "role"], name="membership_unique_group_role"
            ),
        ]

    def clean(self) -> None:
        if self.tenant_id and self.role not in TENANT_ROLES:
            raise ValidationError({"role": f"{self.get_role_display()} is not a hospital role."})
        if self.group_id and self.role not in GROUP_ROLES:
            raise ValidationError(
                {"role": f"{self.get_role_display()} is not a reading-group role."}
            )

    def __str__(self) -> str:
        target = self.tenant or self.group
        return f"{self.user} {self.role} @ {target}"


class ReadingAgreement(models.Model):
    """A reading group reads for a tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agreements")
    group = models.ForeignKey(ReadingGroup, on_delete=models.CASCADE, related_name="agreements")
    is_active = models.BooleanField(default=True)
    # What the agreement covers; an empty list covers everything of that kind.
    modalities = models.JSONField(default=list, blank=True, help_text='e.g. ["CT", "MR"].')
    subspecialties = models.JSONField(default=list, blank=True, help_text='e.g. ["neuro"].')
    priority_codes = models.JSONField(default=list, blank=True, help_text='e.g. ["stat"].')
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "group"], name="agreement_unique_tenant_group"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group} reads for {self.tenant}"


class ApiToken(models.Model):
    """A bearer token for programs. Only a SHA-256 of the secret part is stored.

    The token reads ``sky_<prefix>_<secret>``; the prefix finds the row, the secret is compared in
    constant time. Tokens carry 256 bits of randomness, so a fast hash is the right tool here
    (a password hash would only slow every request).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Scope: a token may be kept to one hospital (others are "not found" to it) and to reading.
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    read_only = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def is_usable(self, now: object | None = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now  # type: ignore[operator]

    def __str__(self) -> str:
        return f"token {self.prefix} of {self.user}"


class SecurityPolicy(models.Model):
    """A hospital's own security choices, edited by its admins.

    Radiologists and admins always need a second factor; referring physicians only where their
    hospital asks for it (many referrers read results on shared ward computers, others never)."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="security_policy")
    referrer_mfa_required = models.BooleanField(
        default=False,
        help_text="Referring physicians of this hospital must use an authenticator app.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "security policies"

    def __str__(self) -> str:
        return f"security policy of {self.tenant}"


class AuditAction(models.TextChoices):
    ASSOCIATION_ACCEPTED = "dimse.association.accepted"
    ASSOCIATION_REJECTED = "dimse.association.rejected"
    ECHO = "dimse.echo"
    DIMSE_STORE = "dimse.store"
    STOW_STORE = "dicomweb.stow"
    INDEX = "instance.index"
    DUPLICATE = "instance.duplicate"
    REPLACE = "instance.replace"
    SUPERSEDED = "instance.superseded"
    UNREADABLE = "instance.unreadable"
    STUDY_READY = "study.ready"
    # Queries carry their keys in the detail; retrieves carry the UIDs they returned.
    QIDO_QUERY = "dicomweb.query"
    WADO_RETRIEVE = "dicomweb.retrieve"
    DIMSE_FIND = "dimse.find"
    DIMSE_MOVE = "dimse.move"
    DIMSE_GET = "dimse.get"
    STUDY_LIST = "study.list"
    STUDY_VIEW = "study.view"
    RECEIPT_LIST = "receipt.list"
    TOKEN_ISSUED = "token.issued"
    TOKEN_REVOKED = "token.revoked"
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOGOUT = "auth.logout"
    ACCESS_DENIED = "access.denied"
    # Issue 7: second factor, lockouts, session clocks, password changes
    MFA_ENROL = "auth.mfa_enrol"
    MFA_VERIFY = "auth.mfa_verify"
    MFA_FAILED = "auth.mfa_failed"
    LOCKOUT = "auth.lockout"
    SESSION_EXPIRED = "auth.session_expired"
    PASSWORD_CHANGE = "auth.password_change"
    # The reading worklist (worklists/)
    WORKLIST_LIST = "worklist.list"
    ITEM_CREATED = "worklist.item.created"
    ITEM_VIEW = "worklist.item.view"
    ITEM_CLAIM = "worklist.item.claim"
    ITEM_HEARTBEAT_LOST = "worklist.item.lease_lost"
    ITEM_RELEASE = "worklist.item.release"
    ITEM_LEASE_EXPIRED = "worklist.item.lease_expired"
    ITEM_REASSIGN = "worklist.item.reassign"
    ITEM_ASSIGN = "worklist.item.assign"
    ITEM_DECLINE = "worklist.item.decline"
    ITEM_SLA_PAUSE = "worklist.item.sla_pause"
    ITEM_SLA_RESUME = "worklist.item.sla_resume"
    ITEM_ESCALATE = "worklist.item.escalate"
    ITEM_PRIORITY = "worklist.item.priority"
    CREDENTIAL_CHANGE = "worklist.credential"
    VIEWER_OPEN = "viewer.open"
    # Reports (reports/): every save, signature and refusal of one
    REPORT_DRAFT_SAVE = "report.draft_save"
    REPORT_SIGN = "report.sign"
    REPORT_ADDENDUM = "report.addendum"
    REPORT_CORRECTION = "report.correction"
    REPORT_DISCARD = "report.discard"
    REPORT_VIEW = "report.view"
    REPORT_REVISE = "report.revise"
    # Co-sign: a preliminary sent to a hospital radiologist, validated or returned
    REVIEW_REQUEST = "report.review.request"
    REVIEW_VALIDATE = "report.review.validate"
    REVIEW_RETURN = "report.review.return"
    REVIEW_CANCEL = "report.review.cancel"
    RESULT_VIEW = "report.result.view"
    TEMPLATE_CHANGE = "report.template.change"
    # Collaboration: consults (one study, revocable) and comments
    CONSULT_REQUEST = "consult.request"
    CONSULT_ACCEPT = "consult.accept"
    CONSULT_REVOKE = "consult.revoke"
    CONSULT_ANSWER = "consult.answer"
    COMMENT_ADD = "comment.add"
    # Critical results (ACR categories 1-3)
    CRITICAL_FLAG = "critical.flag"
    CRITICAL_COMMUNICATE = "critical.communicate"
    CRITICAL_ACKNOWLEDGE = "critical.acknowledge"
    CRITICAL_ESCALATE = "critical.escalate"
    CRITICAL_LIST = "critical.list"
    # Delivery of final reports, per channel
    DELIVERY_SEND = "report.delivery.send"
    DELIVERY_RETRY = "report.delivery.retry"
    REPORT_EXPORT = "report.export"
    EVIDENCE_VIEW = "report.evidence.view"
    # A hospital's configuration changed (review policy, critical-result limits, delivery):
    # which settings and which fields, never their values' secrets.
    SETTINGS_CHANGE = "tenant.settings"
    # Security (issue 7): who belongs where, tokens, break-glass and reading the log itself
    MEMBERSHIP_ADD = "tenant.membership.add"
    MEMBERSHIP_REMOVE = "tenant.membership.remove"
    AGREEMENT_ADD = "tenant.agreement.add"
    BREAK_GLASS = "access.break_glass"
    # Share links (studies/sharing): made, opened, locked after wrong answers, revoked; grants
    # of studies to referring physicians.
    SHARE_CREATE = "share.create"
    SHARE_OPEN = "share.open"
    SHARE_LOCKED = "share.locked"
    SHARE_REVOKE = "share.revoke"
    SHARE_GRANT = "share.grant"
    AUDIT_VIEW = "audit.view"
    AUDIT_EXPORT = "audit.export"
    # Onboarding and administration (issue 8): tenants and groups made by the platform, invitations,
    # users and roles, DICOM set-up, agreements, credentials, shifts, retention, de-identification
    TENANT_CREATE = "platform.tenant.create"
    GROUP_CREATE = "platform.group.create"
    INVITE_SEND = "invite.send"
    INVITE_ACCEPT = "invite.accept"
    INVITE_REVOKE = "invite.revoke"
    USER_DEACTIVATE = "user.deactivate"
    USER_REACTIVATE = "user.reactivate"
    ROLE_CHANGE = "user.role_change"
    USERS_IMPORT = "user.import"
    ECHO_TEST = "dimse.echo_test"
    AGREEMENT_CHANGE = "tenant.agreement.change"
    AGREEMENT_END = "tenant.agreement.end"
    SHIFT_CHANGE = "group.shift.change"
    CREDENTIAL_REMINDER = "worklist.credential.reminder"
    RETENTION_PURGE = "study.retention.purge"
    DEID_EXPORT = "share.deidentified"
    USAGE_VIEW = "usage.view"


class BreakGlass(models.Model):
    """A hospital's own radiologist or admin opened one work item their privileges do not cover,
    giving a reason: read-only, for a short time, audited BREAK_GLASS, the hospital's admins told.

    The reason is kept here (it may name the clinical situation) and never in the audit row's
    detail or the mail, which carry this row's id only.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    # worklists.WorkItem id; not a foreign key so that tenancy does not depend on the worklist.
    work_item_id = models.BigIntegerField()
    study_instance_uid = models.CharField(max_length=64)
    reason = models.TextField()
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-granted_at"]
        verbose_name = "break-glass access"
        verbose_name_plural = "break-glass accesses"
        indexes = [
            models.Index(fields=["user", "work_item_id", "expires_at"], name="breakglass_user_item")
        ]

    def __str__(self) -> str:
        return f"break-glass {self.pk} by {self.user} until {self.expires_at:%Y-%m-%d %H:%M}"


class Outcome(models.TextChoices):
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"


class ActorType(models.TextChoices):
    USER = "user"
    TOKEN = "token"
    AE = "ae"
    SYSTEM = "system"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: object) -> int:
        raise TypeError("Audit events are append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One access to, or change of, patient data or configuration. Append-only.

    ``tenant`` is null only for events that name no tenant (an association to an unknown AE title,
    a failed login). ``detail`` holds identifiers and codes, never patient data.

    Rows are chained per tenant (the null tenant is the platform's chain): ``seq`` numbers them
    1, 2, 3…, ``prev_hash`` repeats the previous row's ``hash``, and ``hash`` is a SHA-256 over the
    row's content and ``prev_hash`` (``tenants.audit.row_hash``). Writers insert rows unsealed (the
    three fields empty) so that they never wait on each other; ``tenants.audit.seal`` fills them in
    later. The database refuses any other change and every delete (migration 0010).
    """

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_ae_title = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=64, choices=AuditAction.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    patient_ref = models.BigIntegerField(
        null=True, blank=True, help_text="studies.Patient id, when one is known."
    )
    study_instance_uid = models.CharField(max_length=64, blank=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    request_id = models.UUIDField(default=uuid.uuid4)
    detail = models.JSONField(default=dict, blank=True)
    seq = models.BigIntegerField(null=True, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "occurred_at"], name="audit_tenant_time"),
            models.Index(
                fields=["tenant", "actor_user", "occurred_at"], name="audit_tenant_user_time"
            ),
            models.Index(fields=["tenant", "study_instance_uid"], name="audit_tenant_study"),
            models.Index(fields=["tenant", "patient_ref"], name="audit_tenant_patient"),
            # The sealing step reads only the rows still waiting for it.
            models.Index(fields=["tenant", "id"], name="audit_unsealed", condition=Q(hash="")),
            # The DICOM page counts a tenant's rejected associations of the last day, and the
            # platform's usage page those to unknown AE titles (tenant null): rare rows, found
            # without reading the rest of the log.
            models.Index(
                fields=["tenant", "occurred_at"],
                name="audit_rejected_associations",
                condition=Q(action="dimse.association.rejected"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="audit_unique_tenant_seq"),
            models.UniqueConstraint(
                fields=["seq"], condition=Q(tenant__isnull=True), name="audit_unique_platform_seq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise TypeError("Audit events are append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise TypeError("Audit events are append-only.")


# Onboarding's models (invitations, hospital profiles, deactivated memberships) live with their
# feature; importing them here registers them with the tenants app.
from tenants.onboarding.models import (  # noqa: E402, F401
    DeactivatedMembership,
    HospitalProfile,
    Invitation,
)
