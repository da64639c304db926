"""REST API of report templates (reports/templating/api.py), under /api/reports/templates/."""

from django.urls import path

from . import api

urlpatterns = [
    path("items/<int:item_id>/", api.ItemTemplates.as_view(), name="item"),
    path("<int:template_id>/", api.TemplateDetail.as_view(), name="detail"),
    path("<int:template_id>/fill/", api.TemplateFill.as_view(), name="fill"),
    path("<int:template_id>/export/", api.TemplateExport.as_view(), name="export"),
]
