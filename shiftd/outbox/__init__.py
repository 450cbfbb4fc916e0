"""The outbox: what is queued to be sent, and how each message is named."""
