"""Co-sign pages: /reports/review/…"""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.queue, name="queue"),
    path("policy/", views.policy, name="policy"),
    path("<int:request_id>/", views.detail, name="detail"),
    path("<int:request_id>/<str:action>/", views.decide, name="decide"),
]
