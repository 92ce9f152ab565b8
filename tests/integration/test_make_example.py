"""scripts/make_example.py: the bundled example call is reproducible and holds what it says."""

from __future__ import annotations

import importlib.util

import numpy as np
import soundfile as sf

from masker.offline.receivers import spandsp_digits
from tests.support.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT


def load_script():
    spec = importlib.util.spec_from_file_location(
        "make_example", ROOT / "scripts" / "make_example.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_the_example_gives_the_bundled_samples():
    pcm, _ = load_script().example_call()
    bundled, rate = sf.read(ROOT / "fixtures" / "audio" / "example_call.wav", dtype="int16")
    assert rate == 8000
    assert np.array_equal(pcm, bundled)


def test_example_holds_seven_key_presses_an_independent_receiver_hears():
    pcm, tones = load_script().example_call()
    assert len(tones) == 7
    assert len(spandsp_digits(pcm)) == 7


def test_speech_used_by_the_example_ships_with_its_attribution():
    script = load_script()
    speech = [arg for kind, arg in script.SCRIPT if kind == "speech"]
    assert all((script.SPEECH / name).exists() for name in speech)
    assert "CC BY-SA 4.0" in (script.SPEECH / "ATTRIBUTION.md").read_text()
