"""The web server: REST API v1, authentication and (later) the web app."""
