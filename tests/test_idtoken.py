"""ID tokens are verified against the provider's JWKS before any claim is trusted."""

from __future__ import annotations

import json
import time

import pytest

from oauth_core import tokens
from oauth_core.idtoken import IdTokenError
from oauth_core.testing.jwt_keys import SigningKey
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config


def token_answer(idp, **claim_changes):
    """A token endpoint answer whose id_token is a genuine one with some claims changed."""
    answer = idp.mint_tokens()
    claims = idp.verify_jwt(answer["id_token"])
    claims.update(claim_changes)
    return answer, claims


def forged(idp, claims, *, same_key: bool):
    key = idp.key if same_key else SigningKey(kid=idp.key.kid)  # same kid, different key: a forgery
    return key.sign(claims)


def login_with_answer(cli, idp, answer):
    idp.fail_next("/oauth/token", 200, answer)  # the code exchange answers with this
    return cli("login", "chatgpt")


def test_login_checks_the_id_token_against_the_jwks(cli, chatgpt_home, idp):
    assert cli("login", "chatgpt").returncode == 0
    assert idp.count("/.well-known/jwks.json") >= 1


@pytest.mark.parametrize(("change", "same_key", "message"), [
    ({}, False, "bad signature"),
    ({"aud": ["someone-else"]}, True, "issued for another client (aud)"),
    ({"iss": "https://evil.example"}, True, "was not issued by"),
    ({"exp": int(time.time()) - 3600}, True, "has expired"),
])
def test_a_bad_id_token_is_refused_and_nothing_is_written(cli, chatgpt_home, idp, change, same_key, message):
    answer, claims = token_answer(idp, **change)
    answer["id_token"] = forged(idp, claims, same_key=same_key)
    result = login_with_answer(cli, idp, answer)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert message in last
    assert "oauth-hub login chatgpt" in last
    assert answer["access_token"] not in result.stderr and answer["id_token"][:40] not in result.stderr
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()


def test_an_hmac_signed_id_token_is_refused_even_with_a_published_secret(cli, chatgpt_home, idp):
    """Algorithm confusion: a JWKS that (wrongly) publishes a symmetric key lets anyone sign with
    it, so an HS256 ID token is never verified, whatever key the JWKS offers for it."""
    import base64

    import jwt

    secret = b"published-for-anyone-to-read-0123456789"
    symmetric = {"kty": "oct", "kid": "shared", "alg": "HS256", "use": "sig",
                 "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}
    published = idp.key.jwks
    idp.key.jwks = lambda: {"keys": [*published()["keys"], symmetric]}
    answer, claims = token_answer(idp)
    answer["id_token"] = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "shared"})
    result = login_with_answer(cli, idp, answer)
    assert result.returncode == 1, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert "'HS256', which oauth-hub does not accept" in last
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()


def test_a_key_published_for_encryption_does_not_verify_id_tokens(cli, chatgpt_home, idp):
    """RFC 7517 ``use``: a key published for encryption ("enc") is not a signing key, even when
    the token names its kid and it would verify the signature."""
    published = idp.key.jwks
    idp.key.jwks = lambda: {"keys": [{**jwk, "use": "enc"} for jwk in published()["keys"]]}
    result = cli("login", "chatgpt")
    assert result.returncode == 1, result.stdout
    assert "signed by a key it does not publish" in result.stderr.strip().splitlines()[-1]
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()


def test_an_id_token_without_exp_is_refused(cli, chatgpt_home, idp):
    """Without exp an ID token would be good forever: exp is a required claim, not an optional one."""
    answer, claims = token_answer(idp)
    del claims["exp"]
    answer["id_token"] = forged(idp, claims, same_key=True)
    result = login_with_answer(cli, idp, answer)
    assert result.returncode == 1 and "failed verification (MissingRequiredClaimError)" in result.stderr
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()


def test_not_a_jwt_is_refused(cli, chatgpt_home, idp):
    answer = idp.mint_tokens()
    answer["id_token"] = "not-a-jwt"
    result = login_with_answer(cli, idp, answer)
    assert result.returncode == 1 and "not a valid JWT" in result.stderr


def test_claims_of_an_unverified_access_token_are_not_trusted(chatgpt_home, idp):
    """Identity comes from the verified ID token, never from the access token's claims."""
    answer, claims = token_answer(idp)
    access_claims = idp.verify_jwt(answer["access_token"])
    access_claims["https://api.openai.com/auth"]["chatgpt_account_id"] = "acct-attacker"
    answer["access_token"] = SigningKey().sign(access_claims)
    seeded = seed_sign_in("chatgpt", answer, home=chatgpt_home)
    assert seeded.account["account_id"] == idp.account_id


def test_refresh_with_a_forged_id_token_keeps_the_file(chatgpt_home, idp):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, expires_at=time.time() - 5)
    before = (chatgpt_home / "chatgpt_oauth.json").read_bytes()
    answer, claims = token_answer(idp)
    answer["id_token"] = forged(idp, claims, same_key=False)
    idp.fail_next("/oauth/token", 200, answer)
    with pytest.raises(tokens.RefreshPending, match="bad signature") as info:
        tokens.get_token("chatgpt", home=chatgpt_home)
    assert isinstance(info.value.cause, IdTokenError)
    assert (chatgpt_home / "chatgpt_oauth.json").read_bytes() == before
    # The answer spent the refresh token, so it is kept (unused) rather than lost.
    assert json.loads((chatgpt_home / "chatgpt_oauth.pending").read_text())["answer"]["id_token"] == answer["id_token"]


def test_verification_follows_an_issuer_override(chatgpt_home, idp):
    """jwks_uri and the expected iss are written as {issuer}: one override moves both."""
    from oauth_core.provider import Provider
    from oauth_core.store import Store

    settings = Provider.load("chatgpt", Store(chatgpt_home)).settings
    assert settings["jwks_uri"] == f"{idp.issuer}/.well-known/jwks.json"  # "{issuer}/…", expanded
    write_config(chatgpt_home, "chatgpt", verify_id_token=False)
    answer, claims = token_answer(idp)
    answer["id_token"] = forged(idp, claims, same_key=False)
    seeded = seed_sign_in("chatgpt", answer, home=chatgpt_home)  # verification switched off on purpose
    assert json.loads((chatgpt_home / "chatgpt_oauth.json").read_text())["id_token"] == seeded.id_token
