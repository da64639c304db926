"""The co-sign API: /api/reports/review/…"""

from django.urls import path

from reports import api

urlpatterns = [
    path("queue/", api.ReviewQueue.as_view(), name="queue"),
    path("requests/<int:request_id>/", api.ReviewDetail.as_view(), name="request"),
    path("requests/<int:request_id>/validate/", api.ReviewValidate.as_view(), name="validate"),
    path("requests/<int:request_id>/return/", api.ReviewReturn.as_view(), name="return"),
    path("requests/<int:request_id>/cancel/", api.ReviewCancel.as_view(), name="cancel"),
    path("policy/<slug:tenant_slug>/", api.ReviewPolicyDetail.as_view(), name="policy"),
]
