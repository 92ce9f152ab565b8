"""The SIP socket is the service's own: no other process can bind its port beside it."""

import socket

import pytest
from sippy.Udp_server import Udp_server

from masker.sip.transport import OrderedUdpServerOpts


def test_sip_port_taken_by_another_socket_fails_to_bind_instead_of_sharing():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 0))
        port = other.getsockname()[1]
        opts = OrderedUdpServerOpts(("127.0.0.1", port), lambda *a: None)
        with pytest.raises(OSError):
            Udp_server({}, opts)


def test_sip_socket_sets_no_address_or_port_reuse():
    opts = OrderedUdpServerOpts(("127.0.0.1", 0), lambda *a: None)
    assert opts.getSockOpts() == []
