"""Streaming masker specification, measured against the generated tones' ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from structlog.testing import capture_logs

from dsp import testsignals as tg
from dsp.detector import detect
from dsp.replacement import MASK_TONE_DBM0, MASK_TONE_HZ
from dsp.tone_masker import MODES, StreamingMasker, mask_signal

LAWS = ["ulaw", "alaw"]


def span_mask(spans: list[tuple[int, int]], n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    for start, end in spans:
        m[max(start, 0) : end] = True
    return m


def leak_and_overmask_ms(masked: np.ndarray, signal: tg.Signal) -> tuple[np.ndarray, np.ndarray]:
    """Per tone: ms of the tone left unmasked, and ms of non-tone audio masked near it."""
    ms = 1000.0 / signal.rate
    truth = np.zeros(len(masked), bool)
    for t in signal.tones:
        truth[t.start : t.end] = True
    leak = np.array([(~masked[t.start : t.end]).sum() * ms for t in signal.tones])
    extra = np.flatnonzero(masked & ~truth)
    centres = np.array([(t.start + t.end) / 2 for t in signal.tones])
    nearest = np.abs(extra[:, None] - centres[None, :]).argmin(axis=1)
    over = np.bincount(nearest, minlength=len(signal.tones)) * ms
    return leak, over


def random_keys(seed: int, rate: int = 8000) -> tg.Signal:
    """All 16 keys, 40-200 ms tones and pauses, 0..-25 dBm0, twist -4..+8 dB."""
    return tg.random_keys_signal(tg.KEYS, np.random.default_rng(seed), rate)


# -- leak and over-mask --------------------------------------------------------


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_tone_leaks_more_than_5_ms(seed, law):
    signal = random_keys(seed)
    _, _, spans = mask_signal(signal.pcm16(law))
    leak, _ = leak_and_overmask_ms(span_mask(spans, len(signal.samples)), signal)
    assert leak.max() <= 5.0


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_audio_masked_around_a_tone_is_at_most_10_ms_median(seed, law):
    signal = random_keys(seed)
    _, _, spans = mask_signal(signal.pcm16(law))
    _, over = leak_and_overmask_ms(span_mask(spans, len(signal.samples)), signal)
    assert np.median(over) <= 10.0
    assert over.max() <= 20.0


def test_16_khz_tones_are_masked_as_tightly():
    signal = random_keys(5, rate=16000)
    _, _, spans = mask_signal(signal.pcm16(), 16000)
    leak, over = leak_and_overmask_ms(span_mask(spans, len(signal.samples)), signal)
    assert leak.max() <= 5.0 and np.median(over) <= 10.0


@pytest.mark.parametrize("law", LAWS)
def test_40_ms_keys_at_the_weakest_level_and_twist_are_masked(law):
    signal = tg.keys_signal(tg.KEYS, on_ms=40, off_ms=40, level_dbm0=-25, twist_db=8)
    _, _, spans = mask_signal(signal.pcm16(law))
    leak, _ = leak_and_overmask_ms(span_mask(spans, len(signal.samples)), signal)
    assert leak.max() <= 5.0


# -- what leaves is either untouched or not a digit ---------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_audio_outside_masked_spans_is_bit_exact(mode):
    signal = random_keys(6)
    pcm = signal.pcm16("alaw") + tg.to_int16(
        tg.white_noise(len(signal.samples), -50, np.random.default_rng(1))
    )
    out, _, spans = mask_signal(pcm, mode=mode)
    keep = ~span_mask(spans, len(pcm))
    assert np.array_equal(out[keep], pcm[keep])
    assert keep.sum() > (0.01 if mode == "cadence" else 0.2) * len(pcm)


def test_output_is_the_input_delayed_by_the_look_ahead():
    # line noise well below talk: loud noise may have bits masked (BURIED keys)
    pcm = tg.to_int16(tg.white_noise(8000, -35, np.random.default_rng(2)))
    m = StreamingMasker(lookahead_ms=40)
    out = np.concatenate([m.process(pcm[i : i + 160]).audio for i in range(0, 8000, 160)])
    assert m.delay == 320
    assert np.array_equal(out[:320], np.zeros(320, np.int16))
    assert np.array_equal(out[320:], pcm[:-320])


@pytest.mark.parametrize("mode", MODES)
def test_our_detector_finds_no_digit_in_the_output(mode):
    out, digits, _ = mask_signal(random_keys(7).pcm16(), mode=mode)
    assert len(digits) == 16
    assert detect(out) == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("law", LAWS)
def test_independent_receivers_recover_no_digit(mode, law):
    receivers = pytest.importorskip("masker.offline.receivers")
    signal = random_keys(8)
    pcm = signal.pcm16(law)
    # `make test` installs both receivers: a missing one is a failure, not a skip.
    assert receivers.spandsp_digits(pcm) != ""  # the input does carry digits
    out, _, _ = mask_signal(pcm, mode=mode)
    assert receivers.spandsp_digits(out) == ""
    assert receivers.multimon_digits(out) == ""


# -- the replacement -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tone", "silence"])
def test_replacement_does_not_depend_on_the_digit(mode):
    outs, masks = [], []
    for key in "1D":
        pcm = tg.keys_signal(key * 3, on_ms=80, level_dbm0=-10).pcm16()
        out, _, spans = mask_signal(pcm, mode=mode)
        outs.append(out)
        masks.append(span_mask(spans, len(pcm)))
    assert masks[0].sum() > 0
    assert np.array_equal(masks[0], masks[1])
    assert np.array_equal(outs[0][masks[0]], outs[1][masks[1]])


def test_masking_tone_is_one_flat_500_hz_tone_at_minus_20_dbm0():
    signal = tg.keys_signal("5", on_ms=300, level_dbm0=-5)
    out, _, spans = mask_signal(signal.pcm16())
    ((start, end),) = spans
    steady = out[start + 80 : end - 80].astype(float)
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    peak_hz = spectrum.argmax() * 8000 / len(steady)
    level = 10 * np.log10(np.mean(steady**2) / (tg.DBM0_PEAK**2 / 2))
    assert abs(peak_hz - MASK_TONE_HZ) < 15
    assert abs(level - MASK_TONE_DBM0) < 0.5


def test_masking_tone_ramps_in_and_out_smoothly():
    signal = tg.keys_signal("5", on_ms=300, level_dbm0=-5)
    out, _, spans = mask_signal(signal.pcm16())
    ((start, end),) = spans
    peak = tg.dbm0_to_peak(MASK_TONE_DBM0)
    assert np.abs(out[start : start + 4]).max() < 0.1 * peak
    assert np.abs(out[end - 4 : end]).max() < 0.1 * peak


def test_silence_mode_outputs_zeros_in_masked_spans():
    pcm = tg.keys_signal("3", on_ms=100).pcm16()
    out, _, spans = mask_signal(pcm, mode="silence")
    assert not span_mask(spans, len(pcm)) @ (out != 0)


def test_noise_mode_fills_at_the_surrounding_level():
    rng = np.random.default_rng(3)
    signal = tg.keys_signal("7", on_ms=400, lead_ms=600)
    background = tg.white_noise(len(signal.samples), -40, rng)
    pcm = tg.to_int16(signal.samples + background)
    out, _, spans = mask_signal(pcm, mode="noise")
    masked = span_mask(spans, len(pcm))
    level = 10 * np.log10(np.mean(out[masked].astype(float) ** 2) / (tg.DBM0_PEAK**2 / 2))
    assert abs(level - (-40)) < 3


def test_noise_mode_is_reproducible_from_its_seed():
    pcm = tg.keys_signal("7", on_ms=200).pcm16()
    a, _, _ = mask_signal(pcm, mode="noise", seed=5)
    b, _, _ = mask_signal(pcm, mode="noise", seed=5)
    assert np.array_equal(a, b)


# -- cadence ------------------------------------------------------------------------


def cadence_output(keys: str, on_ms: float, off_ms: float) -> tuple[np.ndarray, list]:
    signal = tg.keys_signal(keys, on_ms=on_ms, off_ms=off_ms, lead_ms=200)
    pcm = np.concatenate([signal.pcm16(), np.zeros(8000 * 3, np.int16)])
    out, _, spans = mask_signal(pcm, mode="cadence")
    return out, spans


def test_cadence_masks_one_span_from_the_first_onset_to_a_whole_number_of_bursts():
    out, spans = cadence_output("4111", 60, 90)
    ((start, end),) = spans
    assert abs(start - tg.ms(200, 8000)) <= 24
    assert (end - start) % tg.ms(200, 8000) == 0
    last_tone_end = tg.ms(200 + 3 * 150 + 60, 8000)
    assert end >= last_tone_end + 8000  # kept going for the quiet second


def test_cadence_hides_how_many_keys_were_pressed_and_when():
    # 4 slow keys and 7 fast keys, same first onset and same last tone end
    a, spans_a = cadence_output("4111", 60, 90)
    b, spans_b = cadence_output("9876543", 45, 30)
    assert spans_a == spans_b
    ((start, end),) = spans_a
    assert np.array_equal(a[start:end], b[start:end])


# -- control ------------------------------------------------------------------------


def test_force_mask_masks_any_audio_and_can_be_extended():
    # line noise well below talk: loud noise may have bits masked (BURIED keys)
    pcm = tg.to_int16(tg.white_noise(8000, -35, np.random.default_rng(4)))
    m = StreamingMasker(mode="silence")
    out, spans = [], []
    for i in range(0, 8000, 160):
        if i == 1600:
            m.force_mask(2000, 2400)
        if i == 2240:
            m.force_mask(2000, 3000)  # a running RFC 4733 event grows
        r = m.process(pcm[i : i + 160])
        out.append(r.audio)
        spans += r.masked
    spans += m.flush().masked
    assert spans == [(2000, 3000)]
    out = np.concatenate(out)[m.delay :]
    assert not out[2000:3000].any()
    assert np.array_equal(out[:2000], pcm[:2000])


def test_disarmed_masker_passes_tones_but_still_reports_digits():
    pcm = tg.keys_signal("12", on_ms=80).pcm16()
    out, digits, spans = mask_signal(pcm, armed=False)
    assert spans == []
    assert np.array_equal(out, pcm)
    assert "".join(d.digit for d in digits) == "12"


def test_arming_mid_call_masks_the_keys_after_it():
    pcm = tg.keys_signal("1234", on_ms=80, off_ms=300).pcm16()
    m = StreamingMasker(armed=False)
    spans = []
    for i in range(0, len(pcm), 160):
        if i == 5120:  # after the second key has left
            m.arm()
        spans += m.process(pcm[i : i + 160]).masked
    spans += m.flush().masked
    assert len(spans) == 2  # the third and fourth key only


def test_flush_drains_the_look_ahead():
    pcm = tg.keys_signal("0", on_ms=100, off_ms=0).pcm16()
    m = StreamingMasker()
    out = [m.process(pcm[i : i + 160]).audio for i in range(0, len(pcm), 160)]
    last = m.flush()
    assert sum(len(o) for o in out) + len(last.audio) == len(pcm) + m.delay
    assert [d.digit for d in last.digits] == ["0"]
    assert last.masked and last.masked[-1][1] >= len(pcm) - 16


def test_results_report_digits_and_spans_of_every_key():
    signal = random_keys(10)
    _, digits, spans = mask_signal(signal.pcm16())
    assert "".join(d.digit for d in digits) == signal.keys
    assert len(spans) == 16
    for (start, end), truth in zip(spans, signal.tones, strict=True):
        assert start <= truth.start and end >= truth.end


@pytest.mark.parametrize("lookahead_ms", [30, 60])
def test_look_ahead_is_configurable(lookahead_ms):
    signal = random_keys(11)
    m = StreamingMasker(lookahead_ms=lookahead_ms)
    assert m.delay == lookahead_ms * 8
    _, _, spans = mask_signal(signal.pcm16(), lookahead_ms=lookahead_ms)
    leak, _ = leak_and_overmask_ms(span_mask(spans, len(signal.samples)), signal)
    assert leak.max() <= 5.0


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        StreamingMasker(mode="beep")


def test_masker_logs_nothing_about_digits():
    with capture_logs() as logs:
        mask_signal(random_keys(12).pcm16())
    assert logs == []


@pytest.mark.parametrize("rate", [8000, 16000])
def test_a_keys_line_echo_is_masked_with_it(rate):
    # the hybrid echo (12 dB down, 12 ms later) continues the key after its end; its
    # first half is masked with the key (what is left tips no receiver: see the echo
    # case of test_leak_conditions.py)
    sig = tg.keys_signal("159#", rate, on_ms=100, off_ms=150, level_dbm0=-10)
    noise = tg.white_noise(len(sig.samples), -60.0, np.random.default_rng(3))
    pcm = tg.to_int16(tg.line_echo(sig.samples, rate) + noise)
    _, _, spans = mask_signal(pcm, rate)
    masked = span_mask(spans, len(pcm))
    for t in sig.tones:
        assert masked[t.start : t.end + tg.ms(6, rate)].all()


@pytest.mark.parametrize("seed", [1, 5])
def test_a_key_under_louder_noise_is_masked_whole(seed):
    # tracking and hysteresis: the key stays masked while its tones are the strongest
    # of their groups, though the noise (6 dB over the key) hides them now and then
    rng = np.random.default_rng(seed)
    sig = tg.keys_signal("3", 8000, on_ms=200, off_ms=200, level_dbm0=-12)
    bed = tg.scale_to_dbm0(rng.standard_normal(len(sig.samples)), -6.0)
    _, _, spans = mask_signal(tg.to_int16(sig.samples + bed), 8000)
    t = sig.tones[0]
    assert span_mask(spans, len(sig.samples))[t.start : t.end].all()
