"""The HTTP interface: REST API for integrators and Twilio-compatible webhooks (see app.py)."""
