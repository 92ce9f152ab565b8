"""`masker probe`'s report names what each leg negotiated (transport, codec, SRTP)."""

from __future__ import annotations

from masker.phones.probe_call import ProbeReport, with_tls


def test_report_names_each_legs_transport_codec_and_srtp():
    report = ProbeReport(
        via="v",
        agent="a",
        legs={
            "caller": {
                "transport": "tls",
                "codec": "G722/16000",
                "srtp": "AES_CM_128_HMAC_SHA1_80",
            },
            "agent": {"transport": "udp", "codec": "PCMU", "srtp": ""},
        },
    )
    text = report.render()
    assert "caller leg:       TLS, G722/16000, SRTP AES_CM_128_HMAC_SHA1_80" in text
    assert "agent leg:        UDP, PCMU, plain RTP" in text
    assert report.to_dict()["legs"]["caller"]["codec"] == "G722/16000"


def test_tls_is_added_to_a_uri_once():
    assert with_tls("sip:pay@127.0.0.1:5061") == "sip:pay@127.0.0.1:5061;transport=tls"
    assert with_tls("<sip:pay@h>") == "<sip:pay@h;transport=tls>"
    assert with_tls("sip:pay@h;transport=TLS") == "sip:pay@h;transport=TLS"
