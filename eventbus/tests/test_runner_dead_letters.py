"""Dead letters always fit the dead-letter topic: a payload too large is cut, and a header says so."""

from eventbus.runner import fit_for_dead_letter_topic

HEADERS = [("ce_type", b"conveyor.x.v1"), ("dlt_reason", b"bad-json")]


def test_a_record_that_fits_goes_as_it_is():
    assert fit_for_dead_letter_topic(b"abc", HEADERS, limit=100) == (b"abc", HEADERS)


def test_a_record_too_large_is_cut_to_the_limit_and_says_how_long_it_was():
    value, headers = fit_for_dead_letter_topic(b"x" * 1000, HEADERS, limit=500)
    assert len(value) + sum(len(k) + len(v) for k, v in headers) <= 500
    assert value == b"x" * len(value) and len(value) > 300
    assert headers[-1] == ("dlt_truncated", b"1000")


def test_cutting_again_keeps_the_original_length():
    value, headers = fit_for_dead_letter_topic(b"x" * 1000, HEADERS, limit=500)
    again, headers = fit_for_dead_letter_topic(value, headers, limit=200)
    assert len(again) < len(value) and [v for k, v in headers if k == "dlt_truncated"] == [b"1000"]
