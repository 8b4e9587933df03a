"""The incident console: an HTTP API and web UI built from the service's own topics."""
