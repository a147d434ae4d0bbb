"""Slack listeners: ack, translate the payload into a domain command, call one service, render."""
