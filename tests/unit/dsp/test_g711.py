"""G.711 against the standard's segment tables (ITU-T G.711 tables 1a/2a)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import g711


def ulaw_table() -> dict[int, int]:
    """Code -> decoded value from G.711's mu-law segments, scaled to 16 bits.

    Segment s (0..7), step m (0..15): 14-bit magnitude (2m + 33) * 2**s - 33.
    Positive codes are 0x80 | ~(s << 4 | m) & 0x7F, negative codes drop 0x80.
    """
    table = {}
    for s in range(8):
        for m in range(16):
            value = 4 * ((2 * m + 33) * 2**s - 33)
            code = 0x7F ^ (s << 4 | m)
            table[0x80 | code] = value
            table[code] = -value
    return table


def alaw_table() -> dict[int, int]:
    """Code -> decoded value from G.711's A-law segments, scaled to 16 bits.

    Segment 0: 13-bit magnitude 2m + 1; segment s >= 1: (2m + 33) * 2**(s - 1).
    Even bits are inverted (XOR 0x55); the sign bit set means positive.
    """
    table = {}
    for s in range(8):
        for m in range(16):
            mag = 2 * m + 1 if s == 0 else (2 * m + 33) * 2 ** (s - 1)
            code = (s << 4 | m) ^ 0x55
            table[code | 0x80] = 8 * mag
            table[code & 0x7F] = -8 * mag
    return table


@pytest.mark.parametrize("law,table", [("ulaw", ulaw_table()), ("alaw", alaw_table())])
def test_every_code_decodes_to_the_standard_value(law, table):
    codes = np.arange(256, dtype=np.uint8)
    decoded = g711.decode(codes, law)
    assert {int(c): int(v) for c, v in zip(codes, decoded, strict=True)} == table


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encoding_a_decoded_value_gives_back_its_code(law):
    codes = np.arange(256, dtype=np.uint8)
    again = g711.encode(g711.decode(codes, law), law)
    same = again == codes
    if law == "ulaw":  # 0x7F is "negative zero" and encodes as positive zero 0xFF
        assert np.flatnonzero(~same).tolist() == [0x7F] and again[0x7F] == 0xFF
    else:
        assert same.all()


def quantisation_error_ok(law: str) -> bool:
    pcm = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    decoded = g711.decode(g711.encode(pcm, law), law).astype(np.int32)
    levels = np.unique(g711.decode(np.arange(256, dtype=np.uint8), law)).astype(np.int32)
    gaps = np.diff(levels)
    i = np.searchsorted(levels, decoded)
    widest = np.maximum(gaps[np.clip(i - 1, 0, len(gaps) - 1)], gaps[np.clip(i, 0, len(gaps) - 1)])
    # up to overload, the error stays within half a step (+ the bits dropped before encoding)
    inside = (pcm >= levels[0]) & (pcm <= levels[-1])
    error_ok = np.abs(decoded - pcm) <= widest // 2 + 8
    return bool(np.all(error_ok[inside]))


def test_a_law_error_stays_within_half_a_step_up_to_overload():
    assert quantisation_error_ok("alaw")


def test_mu_law_error_stays_within_half_a_step_up_to_overload():
    assert quantisation_error_ok("ulaw")


def test_mu_law_full_scale_clips_to_the_largest_code():
    pcm = np.array([32767, 32700, -32768, -32700], np.int16)
    assert g711.ulaw_decode(g711.ulaw_encode(pcm)).tolist() == [32124, 32124, -32124, -32124]


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_encoding_is_monotonic(law):
    codes = g711.encode(np.arange(-32768, 32768, 64).astype(np.int16), law)
    values = g711.decode(codes, law).astype(np.int32)
    assert np.all(np.diff(values) >= 0)


def test_silence_codes():
    assert g711.ulaw_decode(np.array([g711.ULAW_SILENCE]))[0] == 0
    assert abs(int(g711.alaw_decode(np.array([g711.ALAW_SILENCE]))[0])) == 8
    assert g711.ulaw_encode(np.zeros(1, np.int16))[0] == 0xFF
    assert g711.alaw_encode(np.zeros(1, np.int16))[0] == 0xD5


def test_bytes_and_any_shape_are_accepted():
    pcm = np.arange(-1200, 1200, 10, dtype=np.int16).reshape(4, -1)
    codes = g711.encode(pcm, "PCMU")
    assert codes.shape == pcm.shape
    assert np.array_equal(g711.decode(codes.tobytes(), "pcmu"), g711.decode(codes, "ulaw").ravel())
