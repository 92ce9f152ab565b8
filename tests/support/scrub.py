"""Generated recordings for the `masker scrub` tests: speech with keys mixed in.

Speech comes from the repository's fixtures/audio/speech (8 kHz); keys from
dsp.testsignals.  Everything is seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from dsp import testsignals
from tests.support.paths import PROJECT_ROOT

SPEECH = PROJECT_ROOT / "fixtures" / "audio" / "speech"


def speech(seconds: float, rng: np.random.Generator, rate: int = 8000) -> np.ndarray:
    """float samples of concatenated speech files at `rate` (resampled from 8 kHz)."""
    files = sorted(SPEECH.glob("*.wav"))
    parts, n = [], 0
    while n < seconds * 8000:
        x, r = sf.read(files[int(rng.integers(len(files)))], dtype="float64")
        assert r == 8000
        x = x * 32768.0 * 0.5
        parts += [x, np.zeros(int(rng.integers(400, 2400)))]
        n += len(x) + len(parts[-1])
    x = np.concatenate(parts)[: int(seconds * 8000)]
    if rate != 8000:
        from scipy.signal import resample_poly

        g = np.gcd(rate, 8000)
        x = resample_poly(x, rate // g, 8000 // g)
    return x


def call_with_keys(
    seconds: float,
    keys: str,
    rng: np.random.Generator,
    rate: int = 8000,
    at: list[float] | None = None,
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """int16 speech with `keys` keyed in groups at times `at` (s); returns (pcm, tone spans)."""
    x = speech(seconds, rng, rate)
    at = at if at is not None else [seconds * 0.3, seconds * 0.6]
    groups = np.array_split(np.array(list(keys)), len(at))
    truth = []
    for t0, group in zip(at, groups, strict=True):
        sig = testsignals.random_keys_signal(
            "".join(group), rng, rate=rate, on_ms=(60, 150), off_ms=(60, 150), level_dbm0=(-20, -3)
        )
        start = int(t0 * rate)
        seg = sig.samples[: len(x) - start]
        x[start : start + len(seg)] = seg + 0.1 * x[start : start + len(seg)]
        truth += [(start + t.start, start + t.end) for t in sig.tones]
    return testsignals.to_int16(x), truth


# -- captures ---------------------------------------------------------------------

CALLER = ("192.0.2.10", 40000)
AGENT = ("192.0.2.20", 50000)


def _frame(src, dst, payload: bytes) -> bytes:
    import socket

    import dpkt

    udp = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(
        src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=17, ttl=64, data=udp
    )
    ip.len = len(ip)
    eth = dpkt.ethernet.Ethernet(
        src=b"\x02\0\0\0\0\1", dst=b"\x02\0\0\0\0\2", type=dpkt.ethernet.ETH_TYPE_IP, data=ip
    )
    return bytes(eth)


def _sdp(addr, port) -> bytes:
    return (
        f"v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\n"
    ).encode()


def _sip(first: str, body: bytes = b"", ctype: str | None = None) -> bytes:
    head = [
        first,
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1",
        "Call-ID: c1@test",
        "CSeq: 1 X",
    ]
    if ctype:
        head.append(f"Content-Type: {ctype}")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: int = 0) -> bytes:
    import struct

    return (
        struct.pack(">BBHII", 0x80, (marker << 7) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
        + payload
    )


def capture_packets(rng: np.random.Generator, seconds: float = 6.0, keys: str = "4929") -> dict:
    """A call with in-band keys, RFC 4733 events and INFO digits.

    Returns {"packets": [(ts, frame)], "inband": pcm16 of the caller stream}.
    """
    from dsp import g711

    caller, truth = call_with_keys(seconds, keys, rng, at=[seconds * 0.25])
    agent = testsignals.to_int16(speech(seconds, rng))
    t = 1_700_000_000.0
    pkts = [
        (
            t,
            _frame(
                ("192.0.2.10", 5060),
                ("192.0.2.20", 5060),
                _sip("INVITE sip:a@192.0.2.20 SIP/2.0", _sdp(*CALLER), "application/sdp"),
            ),
        ),
        (
            t + 0.01,
            _frame(
                ("192.0.2.20", 5060),
                ("192.0.2.10", 5060),
                _sip("SIP/2.0 200 OK", _sdp(*AGENT), "application/sdp"),
            ),
        ),
    ]
    t += 0.05
    n = len(caller) // 160
    ev_start = int(n * 0.6)
    seq_c = 1000
    for k in range(n):
        ts = k * 160
        pkts.append(
            (
                t + k * 0.02,
                _frame(
                    CALLER,
                    AGENT,
                    rtp(
                        0,
                        seq_c,
                        ts,
                        0x1111,
                        g711.encode(caller[k * 160 : (k + 1) * 160], "ulaw").tobytes(),
                    ),
                ),
            )
        )
        seq_c += 1
        pkts.append(
            (
                t + k * 0.02 + 0.001,
                _frame(
                    AGENT,
                    CALLER,
                    rtp(
                        0,
                        5000 + k,
                        ts,
                        0x2222,
                        g711.encode(agent[k * 160 : (k + 1) * 160], "ulaw").tobytes(),
                    ),
                ),
            )
        )
        if ev_start <= k < ev_start + 8:  # one RFC 4733 key press: 6 updates + 3 end packets
            import struct

            dur = (k - ev_start + 1) * 160
            end = 0x80 if k >= ev_start + 5 else 0
            pkts.append(
                (
                    t + k * 0.02 + 0.002,
                    _frame(
                        CALLER,
                        AGENT,
                        rtp(
                            101,
                            seq_c,
                            ev_start * 160,
                            0x1111,
                            struct.pack(">BBH", 7, end | 10, dur),
                            marker=int(k == ev_start),
                        ),
                    ),
                )
            )
            seq_c += 1
    t_info = t + n * 0.02 * 0.8
    pkts.append(
        (
            t_info,
            _frame(
                ("192.0.2.10", 5060),
                ("192.0.2.20", 5060),
                _sip(
                    "INFO sip:a@192.0.2.20 SIP/2.0",
                    b"Signal=5\r\nDuration=160\r\n",
                    "application/dtmf-relay",
                ),
            ),
        )
    )
    pkts.append(
        (
            t_info + 0.3,
            _frame(
                ("192.0.2.10", 5060),
                ("192.0.2.20", 5060),
                _sip("INFO sip:a@192.0.2.20 SIP/2.0", b"8", "application/dtmf"),
            ),
        )
    )
    pkts.sort(key=lambda p: p[0])
    return {"packets": pkts, "caller": caller, "truth": truth}


def write_pcap(path, packets, ng: bool = False) -> None:
    import dpkt

    with open(path, "wb") as fh:
        w = dpkt.pcapng.Writer(fh, snaplen=65535) if ng else dpkt.pcap.Writer(fh, snaplen=65535)
        for ts, frame in packets:
            w.writepkt(frame, ts)


def write_wav(path, pcm: np.ndarray, rate: int, subtype: str = "PCM_16") -> None:
    sf.write(path, pcm, rate, subtype=subtype, format="WAV")


def make_archive(root, seed: int = 7) -> dict:
    """A mixed archive under `root`; returns {relative path: description}."""

    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "2023" / "jan").mkdir(parents=True)
    (root / "2024").mkdir()
    made = {}
    x, _ = call_with_keys(6, "4111", rng)
    write_wav(root / "2023" / "jan" / "ulaw_8k.wav", x, 8000, "ULAW")
    made["2023/jan/ulaw_8k.wav"] = "keys"
    x, _ = call_with_keys(5, "5500", rng, rate=16000)
    y = testsignals.to_int16(speech(5, rng, 16000))
    write_wav(root / "2023" / "jan" / "stereo_16k.wav", np.stack([x, y], axis=1), 16000)
    made["2023/jan/stereo_16k.wav"] = "keys"
    x, _ = call_with_keys(5, "3782", rng, rate=48000)
    y = testsignals.to_int16(speech(5, rng, 48000))
    write_wav(root / "2023" / "stereo_48k.wav", np.stack([y, x], axis=1), 48000)
    made["2023/stereo_48k.wav"] = "keys"
    x, _ = call_with_keys(5, "6011", rng, rate=44100)
    write_wav(root / "2024" / "alaw_44k1.wav", x, 44100, "ALAW")
    made["2024/alaw_44k1.wav"] = "keys"
    x, _ = call_with_keys(5, "3530", rng, rate=48000)
    sf.write(root / "2024" / "mono_48k.flac", x, 48000, subtype="PCM_16", format="FLAC")
    made["2024/mono_48k.flac"] = "keys"
    write_wav(root / "2024" / "speech_only.wav", testsignals.to_int16(speech(4, rng)), 8000)
    made["2024/speech_only.wav"] = "none"
    cap = capture_packets(rng)
    write_pcap(root / "2024" / "call.pcap", cap["packets"])
    made["2024/call.pcap"] = "capture"
    write_pcap(root / "2024" / "call.pcapng", capture_packets(rng, 4.0)["packets"], ng=True)
    made["2024/call.pcapng"] = "capture"
    good = (root / "2023" / "jan" / "ulaw_8k.wav").read_bytes()
    (root / "2023" / "truncated.wav").write_bytes(good[: len(good) // 2])
    made["2023/truncated.wav"] = "truncated"
    pc = (root / "2024" / "call.pcap").read_bytes()
    (root / "2024" / "truncated.pcap").write_bytes(pc[: len(pc) // 2 + 7])
    made["2024/truncated.pcap"] = "truncated"
    (root / "2024" / "notes.txt").write_text("not a recording\n")
    return made
