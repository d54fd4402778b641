"""A refused ID token names what was expected and how to get past it.

The expected values (``iss``, ``aud``, the JWKS) are settings that are not confirmed
against every live account, and the Codex CLI itself does not verify: a person hit by a
wrong one must learn exactly what was expected and how to change it or switch it off.
"""

from __future__ import annotations

import pytest

from .test_idtoken import forged, login_with_answer, token_answer


@pytest.mark.parametrize("change", [{"iss": "https://auth.openai.example"}, {"aud": ["another-client"]}, {}])
def test_the_error_names_iss_aud_jwks_and_the_switch(cli, chatgpt_home, idp, change):
    answer, claims = token_answer(idp, **change)
    answer["id_token"] = forged(idp, claims, same_key=bool(change))
    result = login_with_answer(cli, idp, answer)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert f"Expected iss '{idp.issuer}'" in last
    assert "aud 'app_EMoamEEZ73f0CkXaXp7hrann'" in last
    assert f"signing keys from '{idp.issuer}/.well-known/jwks.json'" in last
    assert "`oauth-hub config set chatgpt.verify_id_token false`" in last
    assert answer["id_token"][:40] not in result.stderr


def test_the_switch_named_in_the_error_works(cli, chatgpt_home, idp):
    answer, claims = token_answer(idp, iss="https://auth.openai.example")
    answer["id_token"] = forged(idp, claims, same_key=True)
    assert login_with_answer(cli, idp, answer).returncode == 1
    switched = cli("config", "set", "chatgpt.verify_id_token", "false")
    assert switched.returncode == 0, switched.stderr
    result = login_with_answer(cli, idp, answer)
    assert result.returncode == 0, result.stderr
    assert (chatgpt_home / "chatgpt_oauth.json").exists()
