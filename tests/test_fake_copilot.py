"""FakeCopilot refuses what GitHub and the Copilot API refuse, the way they refuse it."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest
import requests

from oauth_core.testing.fake_copilot import IDE_CLIENT_ID, OAUTH_APP_CLIENT_IDS, FakeCopilot

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JSON_ACCEPT = {"Accept": "application/json"}
EDITOR = {"Editor-Version": "vscode/1.104.3", "Copilot-Integration-Id": "vscode-chat"}
HELLO = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def fake():
    with FakeCopilot(interval=0) as server:
        yield server


def poll(fake, device_code, client_id=IDE_CLIENT_ID, grant=GRANT):
    return requests.post(fake.access_token_url, json={"client_id": client_id, "device_code": device_code,
                                                      "grant_type": grant}, headers=JSON_ACCEPT, timeout=5).json()


def start(fake, client_id=IDE_CLIENT_ID):
    return requests.post(fake.device_code_url, json={"client_id": client_id, "scope": "read:user"},
                         headers=JSON_ACCEPT, timeout=5).json()


def capi(fake, token, path="/chat/completions", body=None, headers=None):
    return requests.post(fake.plan_api_url() + path, json=body or HELLO,
                         headers={"Authorization": f"Bearer {token}", **(headers if headers is not None else EDITOR)},
                         timeout=5)


def test_device_flow_answers_json_only_when_asked(fake):
    form = requests.post(fake.device_code_url, data={"client_id": IDE_CLIENT_ID, "scope": "read:user"}, timeout=5)
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert set(parse_qs(form.text)) == {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
    unknown = requests.post(fake.device_code_url, json={"client_id": "Iv1.nope"}, headers=JSON_ACCEPT, timeout=5)
    assert unknown.status_code == 400 and unknown.json()["error"] == "incorrect_client_credentials"


def test_polls_follow_rfc_8628_as_github_answers_them(fake):
    device = start(fake)
    assert poll(fake, device["device_code"])["error"] == "authorization_pending"
    assert poll(fake, device["device_code"], grant="authorization_code")["error"] == "unsupported_grant_type"
    assert poll(fake, device["device_code"], client_id=OAUTH_APP_CLIENT_IDS[0])["error"] == "incorrect_device_code"
    fake.interval = 60
    early = start(fake)
    slowed = poll(fake, early["device_code"])  # sooner than the 60 s it was told
    assert slowed["error"] == "slow_down" and slowed["interval"] == 65
    fake.approve(device["user_code"])
    issued = poll(fake, device["device_code"])
    assert issued["access_token"].startswith("ghu_") and issued["token_type"] == "bearer"
    assert poll(fake, device["device_code"])["error"] == "incorrect_device_code"  # single use
    fake.interval = 0
    denied = start(fake)
    fake.deny(denied["user_code"])
    assert poll(fake, denied["device_code"])["error"] == "access_denied"
    late = start(fake)
    fake.clock_offset = 3600
    assert poll(fake, late["device_code"])["error"] == "expired_token"


def test_the_copilot_token_is_for_the_editor_app_and_a_seat(fake):
    ide, other = fake.mint_github_token(), fake.mint_github_token(OAUTH_APP_CLIENT_IDS[1], "read:user repo")
    ok = requests.get(fake.copilot_token_url, headers={"Authorization": f"token {ide}"}, timeout=5)
    assert ok.status_code == 200 and {"token", "expires_at", "refresh_in", "endpoints"} <= set(ok.json())
    assert ok.json()["endpoints"]["api"] == fake.plan_api_url() and ok.headers["x-github-request-id"]
    assert requests.get(fake.copilot_token_url, headers={"Authorization": f"token {other}"},
                        timeout=5).status_code == 404
    assert requests.get(fake.copilot_token_url, headers={"Authorization": "token ghu_wrong"},
                        timeout=5).json()["message"] == "Bad credentials"
    fake.plan = None
    refused = requests.get(fake.copilot_token_url, headers={"Authorization": f"Bearer {ide}"}, timeout=5)
    assert refused.status_code == 403 and refused.json()["error_details"]["notification_id"] == "not_signed_up"
    assert requests.get(fake.copilot_user_url, headers={"Authorization": f"token {ide}"}, timeout=5).status_code == 404


def test_editor_app_tokens_need_the_editor_headers(fake):
    token = fake.mint_tokens()["access_token"]
    missing = capi(fake, token, headers={"Copilot-Integration-Id": "vscode-chat"})
    assert missing.status_code == 400 and missing.text == "bad request: missing Editor-Version header for IDE auth"
    unknown = capi(fake, token, headers={**EDITOR, "Editor-Version": "helix/24.3"})
    assert unknown.text == "bad request: unknown Editor-Version header for IDE auth"
    no_integration = capi(fake, token, headers={"Editor-Version": "vscode/1.104.3"})
    assert no_integration.text == "bad request: missing required Copilot-Integration-Id header"
    bad_integration = capi(fake, token, headers={**EDITOR, "Copilot-Integration-Id": "oauth-hub"})
    assert bad_integration.text == "bad request: unknown Copilot-Integration-Id"
    assert capi(fake, token).status_code == 200
    # An OAuth app's GitHub token (opencode's camp) needs none of them.
    assert capi(fake, fake.mint_github_token(OAUTH_APP_CLIENT_IDS[0]), headers={}).status_code == 200


def test_models_endpoints_images_and_expiry(fake):
    token = fake.mint_tokens()["access_token"]
    wrong_model = capi(fake, token, body={**HELLO, "model": "gpt-9"})
    assert wrong_model.status_code == 400 and wrong_model.json()["error"]["code"] == "model_not_supported"
    disabled = capi(fake, token, body={**HELLO, "model": "gemini-2.5-pro"})
    assert disabled.json()["error"]["code"] == "model_not_supported"
    codex = capi(fake, token, body={**HELLO, "model": "gpt-5-codex"})
    assert codex.status_code == 400 and codex.json()["error"]["code"] == "unsupported_api_for_model"
    assert capi(fake, token, "/responses", {"model": "gpt-5-codex", "input": "hi"}).status_code == 200
    picture = {**HELLO, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]}
    assert "Copilot-Vision-Request" in capi(fake, token, body=picture).json()["error"]["message"]
    assert capi(fake, token, body=picture, headers={**EDITOR, "Copilot-Vision-Request": "true"}).status_code == 200
    assert capi(fake, token, body={"model": "gpt-4.1", "messages": []}).status_code == 400
    fake.expire_copilot_tokens()
    expired = capi(fake, token)
    assert expired.status_code == 401 and expired.text == "unauthorized: token expired"


def test_streams_end_with_done_and_premium_requests_count_user_turns(fake):
    token = fake.mint_tokens()["access_token"]
    streamed = capi(fake, token, body={**HELLO, "stream": True, "stream_options": {"include_usage": True}})
    lines = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and '"usage"' in lines[-2]
    sonnet = {**HELLO, "model": "claude-sonnet-4.5"}
    capi(fake, token, body=sonnet, headers={**EDITOR, "X-Initiator": "agent"})
    assert fake.premium_used() == 0
    capi(fake, token, body=sonnet, headers={**EDITOR, "X-Initiator": "user"})
    assert fake.premium_used() == 1
    seat = requests.get(fake.copilot_user_url, headers={"Authorization": f"token {fake.mint_github_token()}"},
                        timeout=5).json()
    assert seat["quota_snapshots"]["premium_interactions"]["remaining"] == 299
    assert seat["quota_reset_date"] > time.strftime("%Y-%m-%d", time.gmtime(fake.now()))
