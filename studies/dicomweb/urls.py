from django.urls import path, re_path

from . import views

# UIDs are matched loosely here (digits and dots); anything else is answered by the view itself.
UID = r"(?P<study_uid>[0-9.]{1,64})"

urlpatterns = [
    path("studies", views.store_instances, name="dicomweb-studies"),
    re_path(rf"^studies/{UID}$", views.store_instances, name="dicomweb-study"),
]
