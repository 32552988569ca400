"""The HTTP server: ``create_app(config)`` builds it; nothing runs at import."""
