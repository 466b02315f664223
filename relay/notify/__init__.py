"""Outgoing notifications: mail over SMTP (``mail``); push comes later."""
