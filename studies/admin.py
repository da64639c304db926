from django.contrib import admin

from .models import Receipt, Study


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    """Operators see ingest health (ids, sizes, statuses), not patient data."""

    list_display = (
        "id",
        "tenant",
        "source",
        "status",
        "problem",
        "size",
        "received_at",
        "processed_at",
    )
    list_filter = ("status", "source", "tenant")
    readonly_fields = [f.name for f in Receipt._meta.fields if f.name != "head"]
    exclude = ("head",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "tenant",
        "state",
        "number_of_study_related_instances",
        "last_instance_at",
    )
    list_filter = ("state", "tenant")
    readonly_fields = [f.name for f in Study._meta.fields]

    def has_add_permission(self, request):
        return False
