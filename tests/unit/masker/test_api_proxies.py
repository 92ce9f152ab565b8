"""The client behind our reverse proxy: named by the proxy, never by anyone else."""

from __future__ import annotations

from masker.api.proxies import client_address, parse_networks

PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8"])


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"


def test_an_untrusted_peer_cannot_name_another_client():
    assert client_address("198.51.100.7", ["203.0.113.9"], PROXIES) == "198.51.100.7"


def test_a_trusted_proxy_names_the_client():
    assert client_address("127.0.0.1", ["203.0.113.9"], PROXIES) == "203.0.113.9"


def test_the_client_is_the_right_most_address_no_proxy_of_ours_added():
    forged_then_real = ["192.0.2.1, 203.0.113.9", "10.1.2.3"]
    assert client_address("127.0.0.1", forged_then_real, PROXIES) == "203.0.113.9"


def test_a_broken_header_counts_as_the_proxy():
    assert client_address("127.0.0.1", ["not-an-address"], PROXIES) == "127.0.0.1"
