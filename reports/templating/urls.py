"""Template pages (reports/templating/), under /reports/templates/."""

from django.urls import path

from . import panel, views

urlpatterns = [
    path("items/<int:item_id>/panel/", panel.item_panel, name="panel"),
    path("manage/", views.manage, name="manage"),
    path("manage/<str:owner>/templates/new/", views.template_new, name="template-new"),
    path("manage/<str:owner>/templates/import/", views.template_import, name="template-import"),
    path("manage/<str:owner>/blocks/new/", views.block_new, name="block-new"),
    path("manage/templates/<int:template_id>/", views.template_edit, name="template-edit"),
    path(
        "manage/templates/<int:template_id>/active/",
        views.template_active,
        name="template-active",
    ),
    path(
        "manage/templates/<int:template_id>/export/",
        views.template_export,
        name="template-export",
    ),
    path("manage/blocks/<int:block_id>/", views.block_edit, name="block-edit"),
    path("manage/blocks/<int:block_id>/active/", views.block_active, name="block-active"),
]
