"""Built-in exporters: turn a provider's model entries into one agent tool's configuration.

Each module is an exporter plugin registered in the ``oauth_hub.exporters`` entry-point
group, exactly as a third-party exporter would be; the engine side is
:mod:`oauth_core.exporters`.
"""
