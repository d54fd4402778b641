"""django-oauth-toolkit on loopback, for oauth-hub's browser tests.

    python tests/dot_server/serve.py --db FILE [--port 0] [--access-token-ttl S]
                                     [--user alice --password PW] [--test-controls]

Binds 127.0.0.1 (``--port 0``: a free port) first, then starts Django with a fresh
SQLite database in ``--db`` (migrated here), one user with a password and an email,
and two public native clients (django-oauth-toolkit gives each application one grant
type): ``oauth-hub-test`` for authorization code + PKCE (redirect URI
``http://127.0.0.1:8765/callback``; any port matches, RFC 8252 7.3) and
``oauth-hub-device`` for the device authorization grant. When it listens it prints
``ISSUER=<url>`` and ``CONFIG=<json>`` on stdout; request lines (method, path without
query, status) go to stderr. It stops at end of stdin, or on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socketserver
import sys
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

HERE = Path(__file__).resolve().parent
CODE_CLIENT = "oauth-hub-test"
DEVICE_CLIENT = "oauth-hub-device"
REDIRECT_URI = "http://127.0.0.1:8765/callback"


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Handler(WSGIRequestHandler):
    def log_request(self, code: object = "-", size: object = "-") -> None:
        # Never the query string: it carries codes and state.
        path = self.path.split("?", 1)[0]
        print(f"dot server: {self.command} {path} -> {code}", file=sys.stderr, flush=True)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def rsa_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def set_up(user: str, password: str) -> None:
    """Migrate the database, create the user and the two clients."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from oauth2_provider.models import get_application_model

    call_command("migrate", verbosity=0, interactive=False)
    get_user_model().objects.create_user(user, email=f"{user}@example.test", password=password,
                                         first_name="Test", last_name=user.title())
    application = get_application_model()
    application.objects.create(
        name="oauth-hub tests", client_id=CODE_CLIENT, client_type=application.CLIENT_PUBLIC,
        authorization_grant_type=application.GRANT_AUTHORIZATION_CODE, redirect_uris=REDIRECT_URI,
        algorithm=application.RS256_ALGORITHM, skip_authorization=False,
    )
    application.objects.create(
        name="oauth-hub device tests", client_id=DEVICE_CLIENT, client_type=application.CLIENT_PUBLIC,
        authorization_grant_type=application.GRANT_DEVICE_CODE, algorithm=application.RS256_ALGORITHM,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file to create")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--access-token-ttl", type=int, default=300)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password", default="correct horse battery staple")
    parser.add_argument("--test-controls", action="store_true",
                        help="add POST /__test/expire-access-tokens")
    args = parser.parse_args()

    server = Server(("127.0.0.1", args.port), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="dot_site.settings", DOT_BASE_URL=base, DOT_DB=args.db,
        DOT_SECRET_KEY=secrets.token_urlsafe(40), DOT_RSA_KEY=rsa_key_pem(),
        DOT_ACCESS_TOKEN_TTL=str(args.access_token_ttl), DOT_TEST_CONTROLS="1" if args.test_controls else "0",
    )
    sys.path.insert(0, str(HERE))
    import django
    from django.core.wsgi import get_wsgi_application

    django.setup()
    set_up(args.user, args.password)
    server.set_app(get_wsgi_application())

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    if not sys.stdin.isatty():
        def watch_stdin() -> None:
            sys.stdin.read()
            stop()

        threading.Thread(target=watch_stdin, daemon=True).start()
    issuer = f"{base}/o"
    print(f"ISSUER={issuer}", flush=True)
    print("CONFIG=" + json.dumps({
        "issuer": issuer, "client_id": CODE_CLIENT, "device_client_id": DEVICE_CLIENT,
        "redirect_uris": [REDIRECT_URI], "user": args.user, "password": args.password,
        "email": f"{args.user}@example.test", "access_token_ttl": args.access_token_ttl,
    }), flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
