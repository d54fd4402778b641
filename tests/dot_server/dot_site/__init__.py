"""A minimal Django site serving django-oauth-toolkit, for oauth-hub's browser tests."""
