from django.urls import path

from . import token_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("mfa/verify/", views.mfa_verify, name="mfa-verify"),
    path("mfa/enrol/", views.mfa_enrol, name="mfa-enrol"),
    path("password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("t/<slug:tenant_slug>/security/", views.security_policy, name="security-policy"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", token_views.token_revoke, name="token-revoke"),
    path("api/tokens/", token_views.TokenListView.as_view(), name="api-tokens"),
    path(
        "api/tokens/<int:token_id>/revoke/",
        token_views.TokenRevokeView.as_view(),
        name="api-token-revoke",
    ),
]
