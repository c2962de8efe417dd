"""Monitoring: Prometheus metrics and structured logs of a running twin."""
