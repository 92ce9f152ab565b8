"""The control channel of a media worker (masker.media.channel): messages keep their
boundaries, sockets cross with them and still work, and the end of the other side is
seen as such."""

from __future__ import annotations

import socket

import pytest

from masker.media.channel import MAX_MESSAGE, Channel, ChannelClosed, channel_pair


@pytest.fixture
def ends():
    a, b = channel_pair()
    yield Channel(a, timeout=2), Channel(b, timeout=2)
    a.close()
    b.close()


def test_a_udp_socket_passed_with_a_message_receives_what_is_sent_to_it(ends):
    here, there = ends
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    here.send(("open", "call-1"), [udp.fileno()])
    message, fds = there.recv()
    received = socket.socket(fileno=fds[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.sendto(b"rtp", udp.getsockname())
    received.settimeout(2)
    assert message == ("open", "call-1") and received.recv(16) == b"rtp"
    received.close()
    udp.close()


def test_messages_arrive_whole_and_in_order(ends):
    here, there = ends
    for i in range(3):
        here.send(("digit", "call-1", str(i), "inband"))
    assert [there.recv()[0][2] for _ in range(3)] == ["0", "1", "2"]


def test_a_message_too_long_for_the_channel_is_refused_by_the_receiver(ends):
    here, there = ends
    here.send(("x", b"\0" * MAX_MESSAGE))
    with pytest.raises(ValueError, match="too long"):
        there.recv()


def test_the_other_end_closing_is_reported(ends):
    here, there = ends
    here.close()
    with pytest.raises(ChannelClosed):
        there.recv()


def test_secrets_sent_beside_a_message_arrive_as_its_last_item_in_fresh_bytearrays(ends):
    here, there = ends
    tx, rx = bytearray(b"\x01" * 30), bytearray(b"\x02" * 46)
    here.send(("caller_sdp", "call-1", "AES_CM_128_HMAC_SHA1_80"), secrets=[tx, rx])
    message, _ = there.recv()
    assert message[:3] == ("caller_sdp", "call-1", "AES_CM_128_HMAC_SHA1_80")
    assert message[3] == [tx, rx] and all(type(k) is bytearray for k in message[3])
