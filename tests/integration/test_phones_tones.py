"""The phones' test signals: keyed tones where the schedule says, a marker that is no digit."""

from __future__ import annotations

import numpy as np
import pytest

from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.phones.tones import chirp_marker, key_frequencies, keyed_signal


def test_keyed_signal_is_decoded_to_its_keys_by_spandsp():
    assert spandsp_digits(keyed_signal("4111#").pcm) == "4111#"


def test_keyed_signal_is_decoded_to_its_keys_by_multimon():
    assert multimon_digits(keyed_signal("90*D").pcm) == "90*D"


def test_marker_alone_decodes_to_no_digit():
    pcm = np.concatenate([np.zeros(800, np.int16), chirp_marker(), np.zeros(800, np.int16)])
    assert spandsp_digits(pcm) == ""
    assert multimon_digits(pcm) == ""


def test_spans_cover_exactly_the_tones():
    sig = keyed_signal("12", tone_ms=100, gap_ms=50)
    first, second = sig.spans
    assert first.end - first.start == 800
    assert second.start - first.end == 400
    assert np.all(sig.pcm[first.end : second.start] == 0)
    assert np.abs(sig.pcm[first.start : first.end]).max() > 5000


def test_marker_comes_before_the_first_tone():
    sig = keyed_signal("5")
    assert sig.marker_start is not None
    assert sig.marker_start + sig.marker_len < sig.spans[0].start


def test_key_frequencies_follow_the_keypad():
    assert key_frequencies("5") == (770.0, 1336.0)
    assert key_frequencies("#") == (941.0, 1477.0)


def test_unknown_key_is_refused():
    with pytest.raises(ValueError):
        key_frequencies("x")
