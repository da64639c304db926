"""REST API of the worklist (worklists/api.py), under /api/worklist/."""

from django.urls import URLPattern, URLResolver, include, path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(use_regex_path=False)
router.register("licences", api.LicenceViewSet, basename="worklist-licence")
router.register("privileges", api.PrivilegeViewSet, basename="worklist-privilege")

urlpatterns: list[URLPattern | URLResolver] = [
    path("items/", api.ItemList.as_view(), name="worklist-api-items"),
    path("items/<int:item_id>/", api.ItemDetail.as_view(), name="worklist-api-item"),
    path("items/<int:item_id>/claim/", api.ItemClaim.as_view()),
    path("items/<int:item_id>/heartbeat/", api.ItemHeartbeat.as_view()),
    path("items/<int:item_id>/release/", api.ItemRelease.as_view()),
    path("items/<int:item_id>/reassign/", api.ItemReassign.as_view()),
    path("items/<int:item_id>/decline/", api.ItemDecline.as_view()),
    path("items/<int:item_id>/pause/", api.ItemPause.as_view()),
    path("items/<int:item_id>/resume/", api.ItemResume.as_view()),
    path("items/<int:item_id>/priority/", api.ItemPriority.as_view()),
    path("items/<int:item_id>/cancel/", api.ItemCancel.as_view()),
    path("views/", api.SavedViewList.as_view(), name="worklist-api-views"),
    path("views/counts/", api.SavedViewCounts.as_view()),
    path("views/<int:view_id>/", api.SavedViewDetail.as_view()),
    path("metrics/", api.Metrics.as_view(), name="worklist-api-metrics"),
    path("", include(router.urls)),
]
