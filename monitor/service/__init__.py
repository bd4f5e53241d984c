"""The background service: the duty calendar, status, health and metrics."""
