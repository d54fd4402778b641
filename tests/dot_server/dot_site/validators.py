"""The claims the site publishes: django-oauth-toolkit's documented way to add them."""

from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    def get_additional_claims(self):
        # Request-agnostic (one argument): also listed in discovery's claims_supported. Each
        # is released only with its scope (oidc_claim_scope: email -> "email", name -> "profile").
        return {
            "email": lambda request: request.user.email,
            "email_verified": lambda request: True,
            "name": lambda request: request.user.get_full_name() or request.user.username,
        }
