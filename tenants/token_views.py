"""API tokens for their owner: the page /tokens/ and the API /api/tokens/."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import tokens
from .models import ApiToken
from .queries import readable_tenants


def _address(request: Any) -> str | None:
    return request.META.get("REMOTE_ADDR")


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    plaintext = ""
    error = ""
    if request.method == "POST":
        try:
            days_raw = request.POST.get("days", "").strip()
            _, plaintext = tokens.issue(
                user=user,
                name=request.POST.get("name", "").strip(),
                tenant_slug=request.POST.get("tenant", "").strip(),
                read_only=request.POST.get("access") != "read-write",
                days=int(days_raw) if days_raw else None,
            )
        except ValueError as exc:
            error = (
                str(exc)
                if isinstance(exc, tokens.TokenRequestError)
                else "Enter the lifetime as a whole number of days."
            )
    return render(
        request,
        "tenants/tokens.html",
        {
            "tokens": tokens.owned_by(user),
            "tenants": readable_tenants(user),
            "plaintext": plaintext,
            "error": error,
        },
        status=400 if error else 200,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    user: Any = request.user
    token = tokens.revoke(user=user, token_id=token_id, address=_address(request))
    messages.success(request, f"Token {token.prefix} is revoked; programs using it are refused.")
    return redirect("tokens")


class TokenSerializer(serializers.ModelSerializer[ApiToken]):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "tenant", "read_only", "created_at", "expires_at",
            "revoked_at", "last_used_at",
        ]  # fmt: skip
        read_only_fields = fields


class TokenRequestSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    tenant = serializers.SlugField(
        required=False, allow_blank=True, help_text="Keep the token to this hospital."
    )
    read_only = serializers.BooleanField(default=True)
    days = serializers.IntegerField(required=False, min_value=1, help_text="Lifetime in days.")


class IssuedTokenSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; only a hash is kept.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenListView(APIView):
    """Your API tokens; issue a new one (from a signed-in session only)."""

    @extend_schema(responses=TokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = tokens.owned_by(request.user)
        return Response(TokenSerializer(rows, many=True).data)

    @extend_schema(request=TokenRequestSerializer, responses={201: IssuedTokenSerializer})
    def post(self, request: Request) -> Response:
        if request.auth is not None:
            raise PermissionDenied("Issue tokens from a signed-in session, not with a token.")
        body = TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            token, plaintext = tokens.issue(
                user=request.user,
                name=body.validated_data.get("name", ""),
                tenant_slug=body.validated_data.get("tenant", ""),
                read_only=body.validated_data["read_only"],
                days=body.validated_data.get("days"),
            )
        except tokens.TokenRequestError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        data = dict(TokenSerializer(token).data, token=plaintext)
        return Response(data, status=status.HTTP_201_CREATED)


class TokenRevokeView(APIView):
    """Revoke one of your tokens; another person's token is not found."""

    @extend_schema(request=None, responses=TokenSerializer)
    def post(self, request: Request, token_id: int) -> Response:
        token = tokens.revoke(user=request.user, token_id=token_id, address=_address(request))
        return Response(TokenSerializer(token).data)
