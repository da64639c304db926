"""Django admin for delivery: the settings per hospital, and the deliveries (read-only)."""

from __future__ import annotations

from django.contrib import admin

from .models import Delivery, DeliverySettings


@admin.register(DeliverySettings)
class DeliverySettingsAdmin(admin.ModelAdmin):
    list_display = ("tenant", "hospital_name", "pacs_destination", "webhook_url", "hl7_enabled")
    exclude = ("logo",)  # uploaded through the hospital's settings page, which checks it


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "version", "channel", "status", "attempts", "updated_at")
    list_filter = ("status", "channel")
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
