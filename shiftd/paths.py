"""The URL paths others are told about or call back, spelled once: the routes serve them,
the notifier hands them to Twilio, the fake Twilio and the benchmarks call them."""

TWILIO = "/webhooks/twilio"
TWILIO_SMS = f"{TWILIO}/sms"
"""A caregiver's text, posted by Twilio."""
TWILIO_VOICE = f"{TWILIO}/voice"
"""The call's script, fetched by Twilio when the caregiver answers."""
TWILIO_GATHER = f"{TWILIO_VOICE}/gather"
"""The digit the caregiver pressed."""
TWILIO_STATUS = f"{TWILIO}/status"
"""Delivery status callbacks of texts and calls."""
