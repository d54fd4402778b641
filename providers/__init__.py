"""Built-in providers, each a pluggy plugin registered in the ``oauth_hub.providers`` entry-point group."""
