"""Gatekeeper: the Slack-operated checkpoint between ML development and production."""

__version__ = "0.1.0"
