"""REST API of collaboration (reports/collab/api.py), under /api/reports/collab/."""

from django.urls import URLPattern, path

from . import api

urlpatterns: list[URLPattern] = [
    path("items/<int:item_id>/consults/", api.ItemConsults.as_view(), name="consults"),
    path("items/<int:item_id>/comments/", api.ItemComments.as_view(), name="comments"),
    path("consults/<int:consult_id>/accept/", api.ConsultAccept.as_view(), name="accept"),
    path("consults/<int:consult_id>/revoke/", api.ConsultRevoke.as_view(), name="revoke"),
    path("notifications/", api.Notifications.as_view(), name="notifications"),
    path("notifications/read/", api.NotificationsRead.as_view(), name="notifications-read"),
]
