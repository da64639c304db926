from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import (
    AllowedCaller,
    ApiToken,
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
    list_display = ("user", "role", "tenant", "group")
    list_filter = ("role",)


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
