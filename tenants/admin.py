from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db import transaction

from . import audit, services
from .models import (
    AllowedCaller,
    ApiToken,
    AuditAction,
    AuditEvent,
    CalledAETitle,
    DicomDestination,
    Membership,
    ReadingAgreement,
    ReadingGroup,
    Tenant,
    User,
)


class CalledAETitleInline(admin.TabularInline):
    model = CalledAETitle
    extra = 0


class AllowedCallerInline(admin.TabularInline):
    model = AllowedCaller
    extra = 0


class DicomDestinationInline(admin.TabularInline):
    model = DicomDestination
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_active", "quiet_period_seconds")
    inlines = [CalledAETitleInline, AllowedCallerInline, DicomDestinationInline]


@admin.register(DicomDestination)
class DicomDestinationAdmin(admin.ModelAdmin):
    list_display = ("ae_title", "tenant", "host", "port", "enabled")
    list_filter = ("enabled", "tenant")


@admin.register(ReadingGroup)
class ReadingGroupAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_active")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Role changes made here are audited like those made through tenants.services."""

    list_display = ("user", "role", "tenant", "group")
    list_filter = ("role",)

    def _actor(self, request: Any) -> audit.Actor:
        return audit.Actor.for_user(request.user, address=request.META.get("REMOTE_ADDR"))

    def save_model(self, request: Any, obj: Membership, form: Any, change: bool) -> None:
        with transaction.atomic():
            if change:
                before = Membership.objects.get(pk=obj.pk)
                services._membership_audit(
                    before, AuditAction.MEMBERSHIP_REMOVE, self._actor(request), via="admin"
                )
            super().save_model(request, obj, form, change)
            services._membership_audit(
                obj, AuditAction.MEMBERSHIP_ADD, self._actor(request), via="admin"
            )

    def delete_model(self, request: Any, obj: Membership) -> None:
        services.remove_membership(obj, actor=self._actor(request))

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        for membership in queryset:
            services.remove_membership(membership, actor=self._actor(request))


@admin.register(ReadingAgreement)
class ReadingAgreementAdmin(admin.ModelAdmin):
    list_display = ("group", "tenant", "is_active")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "user",
        "name",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )
    readonly_fields = ("prefix", "secret_hash", "created_at", "last_used_at")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "occurred_at",
        "tenant",
        "action",
        "outcome",
        "actor_type",
        "actor_user",
        "actor_ae_title",
    )
    list_filter = ("action", "outcome", "tenant")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(User, UserAdmin)
