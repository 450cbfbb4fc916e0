"""X-Twilio-Signature: Twilio's documented example, token rotation, and what must fail."""

from __future__ import annotations

from shiftd.http.signature import compute_signature, valid_signature

# The worked example in Twilio's webhook security documentation.
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_compute_signature_matches_twilios_documented_example() -> None:
    assert compute_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE


def test_parameter_order_does_not_matter_keys_are_sorted() -> None:
    reversed_params = dict(reversed(list(DOC_PARAMS.items())))
    assert compute_signature(DOC_TOKEN, DOC_URL, reversed_params) == DOC_SIGNATURE


def test_valid_signature_accepts_the_previous_token_during_rotation() -> None:
    assert valid_signature(["new-token", DOC_TOKEN], DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_valid_signature_refuses_a_wrong_token() -> None:
    assert not valid_signature(["not-the-token"], DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_valid_signature_refuses_a_changed_parameter() -> None:
    tampered = {**DOC_PARAMS, "Digits": "1"}
    assert not valid_signature([DOC_TOKEN], DOC_URL, tampered, DOC_SIGNATURE)


def test_valid_signature_refuses_another_url() -> None:
    other = "https://mycompany.com/myapp.php?foo=1&bar=3"
    assert not valid_signature([DOC_TOKEN], other, DOC_PARAMS, DOC_SIGNATURE)


def test_valid_signature_refuses_missing_signature_or_no_tokens() -> None:
    assert not valid_signature([DOC_TOKEN], DOC_URL, DOC_PARAMS, None)
    assert not valid_signature([DOC_TOKEN], DOC_URL, DOC_PARAMS, "")
    assert not valid_signature([], DOC_URL, DOC_PARAMS, DOC_SIGNATURE)
    assert not valid_signature([""], DOC_URL, DOC_PARAMS, DOC_SIGNATURE)


def test_valid_signature_refuses_garbage_without_raising() -> None:
    assert not valid_signature([DOC_TOKEN], DOC_URL, DOC_PARAMS, "not base64 \u00e9\u2603")


def test_valid_signature_accepts_the_url_with_or_without_the_default_port() -> None:
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    signed_with_port = compute_signature(DOC_TOKEN, with_port, DOC_PARAMS)
    assert valid_signature([DOC_TOKEN], DOC_URL, DOC_PARAMS, signed_with_port)
    assert valid_signature([DOC_TOKEN], with_port, DOC_PARAMS, DOC_SIGNATURE)


def test_repeated_keys_are_signed_in_sorted_order() -> None:
    pairs = [("b", "2"), ("a", "9"), ("a", "1")]
    assert compute_signature("t", "https://x.org/", pairs) == compute_signature(
        "t", "https://x.org/", [("a", "1"), ("a", "9"), ("b", "2")]
    )


def test_unicode_parameters_are_signed_as_utf8() -> None:
    params = {"Body": "oui, j'accepte \u2713", "From": "+15550001"}
    signature = compute_signature("t", "https://x.org/sms", params)
    assert valid_signature(["t"], "https://x.org/sms", params, signature)
