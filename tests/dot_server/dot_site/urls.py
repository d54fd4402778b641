"""django-oauth-toolkit under /o/, Django's login form, and one control for the tests."""

from __future__ import annotations

import os
from datetime import timedelta

from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def expire_access_tokens(request: HttpRequest) -> HttpResponse:
    """Test control: every access token issued so far expires now (a server-side TTL the test controls).

    Only the server's side changes; the client still believes what ``expires_in`` told it.
    """
    from oauth2_provider.models import get_access_token_model

    past = timezone.now() - timedelta(seconds=1)
    count = get_access_token_model().objects.update(expires=past)
    return JsonResponse({"expired": count})


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("accounts/login/", LoginView.as_view(template_name="registration/login.html"), name="login"),
]
if os.environ.get("DOT_TEST_CONTROLS") == "1":
    urlpatterns.append(path("__test/expire-access-tokens", expire_access_tokens))
