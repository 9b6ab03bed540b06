"""
Key derivation (RFC 7296 sections 2.13, 2.14, 2.17, 2.18) against two independent
oracles: an IKEv2 KDF known answer in NIST SP 800-135's test format, and the keys a real
strongSwan 5.9.8 derived in tests/data/strongswan_keys.json. Plus the structure of prf+
itself, restated from the RFC's definition.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ikehub.crypto import (
    ChildKeys,
    CryptoError,
    IkeKeys,
    deriveChildKeys,
    deriveIkeKeys,
    deriveIkeKeysFromSkeyseed,
    deriveRekeyedSkeyseed,
    encrAlgorithm,
    integAlgorithm,
    prfAlgorithm,
    prfPlus,
    skeyseed,
)
from ikehub.wire.constants import EncrId, IntegId, PrfId

DATA = Path(__file__).parent / "data"


def _readKdfVector() -> dict[str, bytes]:
    values = {}
    for line in (DATA / "vectors" / "ikev2_kdf_sha1.txt").read_text().splitlines():
        if line.startswith("#") or " = " not in line:
            continue
        key, _, value = line.partition(" = ")
        values[key] = bytes.fromhex(value)
    return values


KDF = _readKdfVector()
SHA1 = prfAlgorithm(PrfId.HMAC_SHA1)


def test_skeyseedMatchesKdfVector():
    """SKEYSEED = prf(Ni | Nr, g^ir) gives the SP 800-135-format vector's SKEYSEED."""
    assert skeyseed(SHA1, KDF["Ni"], KDF["Nr"], KDF["g^ir"]) == KDF["SKEYSEED"]


def test_prfPlusMatchesKdfVectorDkm():
    """prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) over 132 bytes is the vector's DKM."""
    seed = KDF["Ni"] + KDF["Nr"] + KDF["SPIi"] + KDF["SPIr"]
    assert prfPlus(SHA1, KDF["SKEYSEED"], seed, len(KDF["DKM"])) == KDF["DKM"]


def test_ikeKeysAreTheDkmCutInRfcOrder():
    """
    deriveIkeKeys cuts the DKM into SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr,
    here with AES-128-CBC and HMAC-SHA1-96 (20 + 2*20 + 2*16 + 2*20 = 132 bytes).
    """
    keys = deriveIkeKeys(
        SHA1,
        encrAlgorithm(EncrId.AES_CBC, 128),
        integAlgorithm(IntegId.HMAC_SHA1_96),
        KDF["Ni"],
        KDF["Nr"],
        KDF["g^ir"],
        KDF["SPIi"],
        KDF["SPIr"],
    )
    dkm = KDF["DKM"]
    assert keys.skD == dkm[:20]
    assert (keys.skAi, keys.skAr) == (dkm[20:40], dkm[40:60])
    assert (keys.skEi, keys.skEr) == (dkm[60:76], dkm[76:92])
    assert (keys.skPi, keys.skPr) == (dkm[92:112], dkm[112:132])


def test_childKeymatMatchesKdfVector():
    """KEYMAT = prf+(SK_d, Ni | Nr), with and without a fresh g^ir in front."""
    skD = KDF["DKM"][:20]
    encr = encrAlgorithm(EncrId.AES_CBC, 256)
    integ = integAlgorithm(IntegId.HMAC_SHA1_96)
    child = deriveChildKeys(SHA1, skD, encr, integ, KDF["Ni"], KDF["Nr"])
    assert child.encrI + child.integI + child.encrR + child.integR == KDF["DKM(Child SA)"][:104]
    pfs = deriveChildKeys(
        SHA1, skD, encr, integ, KDF["Ni"], KDF["Nr"], sharedSecret=KDF["g^ir (new)"]
    )
    assert pfs.encrI + pfs.integI + pfs.encrR + pfs.integR == KDF["DKM(Child SA D-H)"][:104]
    assert prfPlus(SHA1, skD, KDF["Ni"] + KDF["Nr"], 132) == KDF["DKM(Child SA)"]


def test_rekeyedSkeyseedMatchesKdfVector():
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 section 2.18)."""
    skD = KDF["DKM"][:20]
    assert (
        deriveRekeyedSkeyseed(SHA1, skD, KDF["g^ir (new)"], KDF["Ni"], KDF["Nr"])
        == KDF["SKEYSEED(Rekey)"]
    )


def _strongSwanExchanges() -> list[dict]:
    path = DATA / "strongswan_keys.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["exchanges"]


def _algorithms(suite: dict):
    encr = encrAlgorithm(suite["encr"]["id"], suite["encr"].get("keyLength"))
    integ = integAlgorithm(suite["integ"]["id"]) if suite["integ"] else None
    return encr, integ


STRONGSWAN = _strongSwanExchanges()


@pytest.mark.skipif(
    not STRONGSWAN,
    reason="tests/data/strongswan_keys.json (written by tests/tools/make_fixtures.py "
    "from a real strongSwan run) is absent",
)
@pytest.mark.parametrize("exchange", STRONGSWAN, ids=lambda e: e["name"])
def test_ikeAndChildKeysMatchStrongSwan(exchange):
    """
    From the nonces, SPIs and g^ir strongSwan 5.9.8 logged, SKEYSEED, all seven SK_*
    and the IKE_AUTH CHILD SA's KEYMAT come out exactly as strongSwan derived them.
    """
    h = bytes.fromhex
    prf = prfAlgorithm(exchange["ike"]["prf"]["id"])
    encr, integ = _algorithms(exchange["ike"])
    ni, nr = h(exchange["ni"]), h(exchange["nr"])
    assert skeyseed(prf, ni, nr, h(exchange["sharedSecret"])) == h(exchange["skeyseed"])
    keys = deriveIkeKeys(
        prf,
        encr,
        integ,
        ni,
        nr,
        h(exchange["sharedSecret"]),
        h(exchange["spiI"]),
        h(exchange["spiR"]),
    )
    for name in ("skD", "skAi", "skAr", "skEi", "skEr", "skPi", "skPr"):
        assert getattr(keys, name) == h(exchange[name]), name
    child = exchange["child"]
    childEncr, childInteg = _algorithms(child)
    childKeys = deriveChildKeys(prf, keys.skD, childEncr, childInteg, ni, nr)
    assert childKeys.encrI == h(child["encrItoR"])
    assert childKeys.integI == h(child["integItoR"])
    assert childKeys.encrR == h(child["encrRtoI"])
    assert childKeys.integR == h(child["integRtoI"])


def test_strongSwanFixtureCoversAeadAndCbc():
    """The oracle exercises both key layouts: AEAD (no SK_a) and CBC with HMAC."""
    if not STRONGSWAN:
        pytest.skip("tests/data/strongswan_keys.json is absent")
    integs = {e["ike"]["integ"] is None for e in STRONGSWAN}
    assert integs == {True, False}


@pytest.mark.parametrize("prfId", [PrfId.HMAC_SHA1, PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_512])
def test_prfPlusChainsAsRfc7296Defines(prfId):
    """
    T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n), restated here with single PRF
    calls: prf+ is their concatenation, cut to the requested length.
    """
    prf = prfAlgorithm(prfId)
    key, seed = b"k" * 17, b"seed material"
    blocks = [prf.compute(key, seed + b"\x01")]
    for n in range(2, 6):
        blocks.append(prf.compute(key, blocks[-1] + seed + bytes((n,))))
    expected = b"".join(blocks)
    for length in (
        0,
        1,
        prf.outputLength - 1,
        prf.outputLength,
        prf.outputLength + 1,
        len(expected),
    ):
        assert prfPlus(prf, key, seed, length) == expected[:length]


def test_prfPlusLengthLimits():
    """prf+ counts blocks in one octet: 255 blocks are fine, one byte more is refused."""
    prf = prfAlgorithm(PrfId.HMAC_SHA2_256)
    longest = prfPlus(prf, b"k", b"s", 255 * 32)
    assert len(longest) == 255 * 32
    assert len({longest[i : i + 32] for i in range(0, len(longest), 32)}) == 255
    for bad in (255 * 32 + 1, -1):
        with pytest.raises(CryptoError):
            prfPlus(prf, b"k", b"s", bad)


def test_aeadIkeKeysHaveNoIntegrityKeysAndSaltedEncryptionKeys():
    """With AES-GCM, SK_ai/SK_ar are empty and SK_e* carry the 4-byte salt."""
    prf = prfAlgorithm(PrfId.HMAC_SHA2_256)
    encr = encrAlgorithm(EncrId.AES_GCM_16, 256)
    keys = deriveIkeKeys(prf, encr, None, b"i" * 32, b"r" * 32, b"g" * 32, b"I" * 8, b"R" * 8)
    assert keys.skAi == keys.skAr == b""
    assert len(keys.skEi) == len(keys.skEr) == 36
    assert len(keys.skD) == len(keys.skPi) == len(keys.skPr) == 32
    seed = skeyseed(prf, b"i" * 32, b"r" * 32, b"g" * 32)
    material = prfPlus(prf, seed, b"i" * 32 + b"r" * 32 + b"I" * 8 + b"R" * 8, 32 + 72 + 64)
    assert keys.skD + keys.skEi + keys.skEr + keys.skPi + keys.skPr == material
    assert (
        deriveIkeKeysFromSkeyseed(prf, encr, None, seed, b"i" * 32, b"r" * 32, b"I" * 8, b"R" * 8)
        == keys
    )


def test_childKeysOrderIsInitiatorPairThenResponderPair():
    """KEYMAT is taken as encr I->R, integ I->R, encr R->I, integ R->I (section 2.17)."""
    prf = prfAlgorithm(PrfId.HMAC_SHA2_256)
    encr = encrAlgorithm(EncrId.AES_CBC, 128)
    integ = integAlgorithm(IntegId.HMAC_SHA2_256_128)
    child = deriveChildKeys(prf, b"d" * 32, encr, integ, b"n" * 16, b"m" * 16)
    material = prfPlus(prf, b"d" * 32, b"n" * 16 + b"m" * 16, 16 + 32 + 16 + 32)
    assert child == ChildKeys(material[:16], material[16:48], material[48:64], material[64:96])


def test_keyHoldersDoNotPrintKeys():
    keys = IkeKeys(*(bytes([n]) * 4 for n in range(7)))
    child = ChildKeys(b"\xaa" * 4, b"\xbb" * 4, b"\xcc" * 4, b"\xdd" * 4)
    for text in (repr(keys), str(keys), repr(child), str(child)):
        assert "\\x" not in text and "aaaa" not in text and "redacted" in text
