from django.urls import path

from . import api

urlpatterns = [
    path("me/", api.MeView.as_view(), name="api-me"),
    path("t/<slug:tenant_slug>/studies/", api.StudyList.as_view(), name="api-studies"),
    path(
        "t/<slug:tenant_slug>/studies/<str:study_uid>/", api.StudyDetail.as_view(), name="api-study"
    ),
    path("t/<slug:tenant_slug>/receipts/", api.ReceiptList.as_view(), name="api-receipts"),
]
