"""The media hot path makes no cyclic garbage: every object a packet or a tick
allocates is freed by its reference count, so the cyclic collector never has to
stop the media thread for it (issue 9).  The calls run in a fresh interpreter, so
that garbage left by other tests' threads in this worker does not count."""

from __future__ import annotations

import gc
import multiprocessing
import time

import numpy as np

from dsp.tone_masker import BatchMasker
from tests.support.media import audio_packets, pcmu_sdp, rtp_socket, running_engine

HOST = "127.0.0.1"


def _garbage_of_calls_in_both_directions() -> tuple[int, int]:
    """(packets masked, objects the cyclic collector finds) over 60 packets a leg."""
    with running_engine(BatchMasker, 24, batch_size=4, max_calls=6) as eng:
        legs = []
        for i in range(3):
            caller, agent = rtp_socket(), rtp_socket()
            media = eng.open_call(f"c{i}")
            eng.set_caller_sdp(media, pcmu_sdp(caller.getsockname()[1], 101, ((0, "PCMU"),)))
            eng.set_agent_sdp(media, pcmu_sdp(agent.getsockname()[1], 101, ((0, "PCMU"),)))
            legs.append((caller, agent, media))
        speech = np.random.default_rng(9).normal(0, 500, 160 * 120).astype(np.int16)
        packets = audio_packets(speech, ssrc=0x55)

        def play(first: int, last: int) -> None:
            for pkt in packets[first:last]:
                for caller, agent, media in legs:
                    caller.sendto(pkt, (HOST, media.caller_port))
                    agent.sendto(pkt, (HOST, media.agent_port))
                time.sleep(0.02)

        play(0, 40)  # warm-up: one-off allocations (chunks, streams, caches)
        gc.collect()
        gc.disable()
        try:
            masked_before = eng.snapshot().get("masked_packets", 0)
            play(40, 120)
            time.sleep(0.1)
            masked = eng.snapshot().get("masked_packets", 0) - masked_before
            unreachable = gc.collect()
        finally:
            gc.enable()
        for caller, agent, _ in legs:
            caller.close()
            agent.close()
    return masked, unreachable


def test_calls_in_both_directions_leave_nothing_for_the_cyclic_collector():
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        masked, unreachable = pool.apply(_garbage_of_calls_in_both_directions)
    assert masked >= 3 * 60  # the path really ran
    assert unreachable == 0
