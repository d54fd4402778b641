"""The oauth-hub command line (see :mod:`oauth_hub.cli`)."""
