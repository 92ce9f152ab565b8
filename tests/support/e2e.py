"""Shared rig for the end-to-end tests: pjsua2 caller -> real `masker serve` -> pjsua2 agent.

Everything runs as real processes on 127.0.0.1 with free ports; the agent
phone is the service's PBX.  Helpers place and end calls and read recordings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from masker.phones.analysis import Alignment, accepted_marker, best_marker_match
from masker.phones.client import PhoneClient, PhoneError
from masker.phones.service_process import ServiceProcess, log_matcher
from masker.phones.tones import keyed_signal
from tests.support.paths import PROJECT_ROOT

CARD_PAN = "4111111111111111"
SPEECH_DIR = PROJECT_ROOT / "fixtures" / "audio" / "speech"


@dataclass
class Rig:
    caller: PhoneClient
    agent: PhoneClient
    service: ServiceProcess
    workdir: Path

    def via(self, user: str = "1000") -> str:
        return f"sip:{user}@{self.service.uri_host}"

    @contextmanager
    def explained(self) -> Iterator[None]:
        """A phone that waited in vain fails with the service's state, stacks and log."""
        try:
            yield
        except PhoneError as exc:
            raise PhoneError(f"{exc}\n--- masker serve ---\n{self.service.diagnose()}") from exc

    def connect(
        self, record: Path | None = None, user: str = "1000", **call_args
    ) -> tuple[int, int]:
        """Caller calls `user` through the masker, agent answers 200; both see media."""
        with self.explained():
            since = len(self.agent.events)
            c = self.caller.call(self.via(user), **call_args)
            a = self.agent.wait_incoming(since=since)["call"]
            self.agent.answer(a, 200, record=record)
            self.caller.wait_state(c, "CONFIRMED")
            self.agent.wait_media(a)
            self.caller.wait_media(c)
        return c, a

    def ring(self, **call_args) -> tuple[int, int]:
        """Caller calls; returns once the agent has the INVITE (unanswered)."""
        with self.explained():
            since = len(self.agent.events)
            c = self.caller.call(self.via(), **call_args)
            a = self.agent.wait_incoming(since=since)["call"]
        return c, a

    def hang_up(self, c: int, a: int, by: str = "caller") -> None:
        with self.explained():
            if by == "caller":
                self.caller.hangup(c)
            else:
                self.agent.hangup(a)
            self.agent.wait_state(a, "DISCONNECTED")
            self.caller.wait_state(c, "DISCONNECTED")

    def play_and_wait(self, c: int, wav: Path, seconds: float) -> None:
        self.caller.play(c, wav)
        time.sleep(seconds + 0.3)


def start_rig(workdir: Path, extra_toml: str = "") -> Rig:
    """Agent phone, `masker serve` in front of it (`extra_toml` ends its config), caller."""
    agent = PhoneClient("agent")
    try:
        service = ServiceProcess(
            pbx_port=agent.sip_port, workdir=workdir / "service", extra_toml=extra_toml
        )
    except Exception:
        agent.close()
        raise
    try:
        caller = PhoneClient("caller")
    except Exception:
        service.stop()
        agent.close()
        raise
    return Rig(caller, agent, service, workdir)


def stop_rig(rig: Rig) -> None:
    rig.caller.close()
    rig.service.stop()
    rig.agent.close()


def write_keys_wav(path: Path, keys: str, tone_ms: int = 100, gap_ms: int = 100):
    sig = keyed_signal(keys, tone_ms=tone_ms, gap_ms=gap_ms)
    sf.write(path, sig.pcm, 8000, subtype="PCM_16")
    return sig


def speech_pcm(n_clips: int = 6) -> np.ndarray:
    """A few spoken-digit clips from the fixtures, joined with short pauses (int16, 8 kHz)."""
    parts = []
    files = sorted(SPEECH_DIR.glob("*.wav"))
    for wav in files[:: max(1, len(files) // n_clips)][:n_clips]:
        pcm, rate = sf.read(wav, dtype="int16")
        assert rate == 8000
        parts += [pcm, np.zeros(1600, dtype=np.int16)]
    return np.concatenate(parts)


def media_summaries(service: ServiceProcess) -> list[dict]:
    """The service's end-of-call media lines (packets, underruns, drops) so far."""
    return list(filter(log_matcher("media.call_closed", {}), service.log_lines))


def marker_found(recording: np.ndarray, sent, media: list[dict] | None = None) -> Alignment:
    """Where the marker is in the recording; else fail with what was there instead:
    the best match, how much of the recording is silent, and the service's media
    summaries (`media`), so that a lost marker says whether audio went missing."""
    best = best_marker_match(recording, sent)
    align = accepted_marker(best)
    if align is None:
        raise AssertionError(
            f"marker not found: best match {best}, "
            f"{np.count_nonzero(recording)} of {len(recording)} samples non-zero; "
            f"the service's media: {media}"
        )
    return align


def read_wav(path: str | Path) -> np.ndarray:
    pcm, rate = sf.read(path, dtype="int16")
    assert rate == 8000
    return pcm


def digest(text: str) -> str:
    """Compare card data by digest so that a failing assert never prints it."""
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def vault_card_digests(service: ServiceProcess, token: str) -> tuple[str, str]:
    """(PAN digest, expiry digest) of the card the service vaulted under `token`.

    Opens the service's SQLite vault with its development keys, as the payment
    side would; the clear card is wiped before returning.
    """
    from tokenizer import TokenizerConfig, build_tokenizer

    keys = service.workdir / "keys"
    tk = build_tokenizer(
        TokenizerConfig(
            vault_path=str(service.workdir / "vault.sqlite"),
            keystore_path=str(keys / "keys.json"),
            kek_env=None,
        ),
        dev_dir=keys / "dev",
    )
    try:
        card = tk.vault.open(token, time.time())
        try:
            return digest(card.pan.reveal()), digest(card.expiry.reveal())
        finally:
            card.wipe()
    finally:
        tk.close()
