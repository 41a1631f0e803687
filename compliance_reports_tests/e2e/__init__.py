"""End-to-end tests: the deployment's real processes (code server, daemon, webserver) and peers."""
