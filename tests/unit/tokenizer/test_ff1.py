"""FF1 against NIST's published samples (SP 800-38G, FF1samples.pdf) and round trips."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenizer.ff1 import FF1

K128 = "2B7E151628AED2A6ABF7158809CF4F3C"
K192 = K128 + "EF4359D8D580AA4F"
K256 = K192 + "7F036D6F04FC6A94"
T_EMPTY = ""
T_10 = "39383736353433323130"
T_11 = "3737373770717273373737"
PT10 = "0123456789"
PT36 = "0123456789abcdefghi"

NIST_SAMPLES = [
    (1, K128, 10, T_EMPTY, PT10, "2433477484"),
    (2, K128, 10, T_10, PT10, "6124200773"),
    (3, K128, 36, T_11, PT36, "a9tv40mll9kdu509eum"),
    (4, K192, 10, T_EMPTY, PT10, "2830668132"),
    (5, K192, 10, T_10, PT10, "2496655549"),
    (6, K192, 36, T_11, PT36, "xbj3kv35jrawxv32ysr"),
    (7, K256, 10, T_EMPTY, PT10, "6657667009"),
    (8, K256, 10, T_10, PT10, "1001623463"),
    (9, K256, 36, T_11, PT36, "xs8a0azh2avyalyzuwd"),
]


@pytest.mark.parametrize("sample,key,radix,tweak,pt,ct", NIST_SAMPLES, ids=lambda v: str(v))
def test_nist_sample_encrypts_to_published_ciphertext(sample, key, radix, tweak, pt, ct):
    assert FF1(bytes.fromhex(key), radix).encrypt(pt, bytes.fromhex(tweak)) == ct


@pytest.mark.parametrize("sample,key,radix,tweak,pt,ct", NIST_SAMPLES, ids=lambda v: str(v))
def test_nist_sample_decrypts_to_published_plaintext(sample, key, radix, tweak, pt, ct):
    assert FF1(bytes.fromhex(key), radix).decrypt(ct, bytes.fromhex(tweak)) == pt


def test_domain_below_one_million_is_refused():
    with pytest.raises(ValueError):
        FF1(bytes(32)).encrypt("12345")


def test_repr_hides_the_key():
    assert "2B7E" not in repr(FF1(bytes.fromhex(K256))).upper()


def test_numeral_outside_the_alphabet_is_refused():
    with pytest.raises(ValueError):
        FF1(bytes(16)).encrypt("12345a")


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.text("0123456789", min_size=6, max_size=19),
    st.binary(max_size=20),
)
def test_decrypt_inverts_encrypt_for_digits(key, plaintext, tweak):
    ff1 = FF1(key, 10)
    ct = ff1.encrypt(plaintext, tweak)
    assert len(ct) == len(plaintext) and ff1.decrypt(ct, tweak) == plaintext


@settings(derandomize=True, max_examples=30, deadline=None)
@given(
    st.binary(min_size=16, max_size=16),
    st.text("0123456789abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=30),
)
def test_decrypt_inverts_encrypt_for_radix_36(key, plaintext):
    ff1 = FF1(key, 36)
    assert ff1.decrypt(ff1.encrypt(plaintext, b"t"), b"t") == plaintext
