"""
Transforms: HMAC PRFs and truncated integrity checks against RFC 4868 and RFC 2202, the
AEAD ciphers with the IPsec salt/IV nonce against NIST GCM vectors and RFC 8439, AES-CBC
against NIST vectors, and the descriptions' sizes against the RFCs that define them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ikehub.crypto import (
    CryptoError,
    DecryptError,
    IntegrityError,
    UnsupportedTransform,
    encrAlgorithm,
    integAlgorithm,
    prfAlgorithm,
)
from ikehub.crypto.transforms import (
    ENCR_NAMES,
    INTEG_NAMES,
    KE_NAMES,
    PRF_FOR_INTEG,
    PRF_NAMES,
)
from ikehub.wire.constants import EncrId, IntegId, KeGroup, PrfId

VECTORS = Path(__file__).parent / "data" / "vectors"


def _readRsp(name: str, firstKey: str) -> list[dict[str, bytes]]:
    entries: list[dict[str, bytes]] = []
    for line in (VECTORS / name).read_text().splitlines():
        if line.startswith("#") or " = " not in line and not line.endswith(" ="):
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key == firstKey:
            entries.append({})
        entries[-1][key] = bytes.fromhex(value.strip())
    return entries


# RFC 4868 section 2.7.1: PRF test cases 1-6 (the keys and data of RFC 4231).
_LONG_KEY = b"\xaa" * 131
RFC4868_PRF = [
    (
        b"\x0b" * 20,
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        (
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
            "faea9ea9076ede7f4af152e8b2fa9cb6"
        ),
        (
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
            "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"
        ),
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        (
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
            "8e2240ca5e69e2c78b3239ecfab21649"
        ),
        (
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        ),
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        (
            "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b"
            "2a5ab39dc13814b94e3ab6e101a34f27"
        ),
        (
            "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
            "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"
        ),
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        (
            "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
            "6801dd23c4a7d679ccf8a386c674cffb"
        ),
        (
            "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
            "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"
        ),
    ),
    (
        _LONG_KEY,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        (
            "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
            "0c2ef6ab4030fe8296248df163f44952"
        ),
        (
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
            "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"
        ),
    ),
    (
        _LONG_KEY,
        (
            b"This is a test using a larger than block-size key and a larger than "
            b"block-size data. The key needs to be hashed before being used by the "
            b"HMAC algorithm."
        ),
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        (
            "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
            "a678cc31e799176d3860e6110c46523e"
        ),
        (
            "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
            "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"
        ),
    ),
]


@pytest.mark.parametrize("key,data,sha256,sha384,sha512", RFC4868_PRF)
def test_prfMatchesRfc4868Section2_7_1(key, data, sha256, sha384, sha512):
    """PRF_HMAC_SHA2_256/384/512 give RFC 4868's PRF test case outputs."""
    assert prfAlgorithm(PrfId.HMAC_SHA2_256).compute(key, data).hex() == sha256
    assert prfAlgorithm(PrfId.HMAC_SHA2_384).compute(key, data).hex() == sha384
    assert prfAlgorithm(PrfId.HMAC_SHA2_512).compute(key, data).hex() == sha512


# RFC 4868 section 2.7.2: authenticator test cases, with the full PRF output and the
# truncated ICV; AUTH512-4 uses the key as corrected by the RFC's errata.
RFC4868_AUTH = [
    (
        IntegId.HMAC_SHA2_256_128,
        b"\x0b" * 32,
        b"Hi There",
        "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7",
        "198a607eb44bfbc69903a0f1cf2bbdc5",
    ),
    (
        IntegId.HMAC_SHA2_256_128,
        b"Jefe" * 8,
        b"what do ya want for nothing?",
        "167f928588c5cc2eef8e3093caa0e87c9ff566a14794aa61648d81621a2a40c6",
        "167f928588c5cc2eef8e3093caa0e87c",
    ),
    (
        IntegId.HMAC_SHA2_256_128,
        b"\xaa" * 32,
        b"\xdd" * 50,
        "cdcb1220d1ecccea91e53aba3092f962e549fe6ce9ed7fdc43191fbde45c30b0",
        "cdcb1220d1ecccea91e53aba3092f962",
    ),
    (
        IntegId.HMAC_SHA2_256_128,
        bytes(range(1, 33)),
        b"\xcd" * 50,
        "372efcf9b40b35c2115b1346903d2ef42fced46f0846e7257bb156d3d7b30d3f",
        "372efcf9b40b35c2115b1346903d2ef4",
    ),
    (
        IntegId.HMAC_SHA2_384_192,
        b"\x0b" * 48,
        b"Hi There",
        (
            "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee9737a959796489bddbc"
            "4c5df61d5b3297b4fb68dab9f1b582c2"
        ),
        "b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973",
    ),
    (
        IntegId.HMAC_SHA2_384_192,
        b"Jefe" * 12,
        b"what do ya want for nothing?",
        (
            "2c7353974f1842fd66d53c452ca42122b28c0b594cfb184da86a368e9b8e16f5"
            "349524ca4e82400cbde0686d403371c9"
        ),
        "2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d",
    ),
    (
        IntegId.HMAC_SHA2_384_192,
        b"\xaa" * 48,
        b"\xdd" * 50,
        (
            "809f439be00274321d4a538652164b53554a508184a0c3160353e3428597003d"
            "35914a18770f9443987054944b7c4b4a"
        ),
        "809f439be00274321d4a538652164b53554a508184a0c316",
    ),
    (
        IntegId.HMAC_SHA2_384_192,
        bytes(range(1, 33)) + bytes(range(10, 26)),
        b"\xcd" * 50,
        (
            "5b540085c6e6358096532b2493609ed1cb298f774f87bb5c2ebf182c83cc7428"
            "707fb92eab2536a5812258228bc96687"
        ),
        "5b540085c6e6358096532b2493609ed1cb298f774f87bb5c",
    ),
    (
        IntegId.HMAC_SHA2_512_256,
        b"\x0b" * 64,
        b"Hi There",
        (
            "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"
            "ac2878ebd5803f6f0b61dbce5e251ff8789a4722c1be65aea45fd464e89f8f5b"
        ),
        "637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8",
    ),
    (
        IntegId.HMAC_SHA2_512_256,
        b"Jefe" * 16,
        b"what do ya want for nothing?",
        (
            "cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454"
            "6aa334ae9fb9afc2184932d8695e397bfa0ffb93466cfcceaae38c833b7dba38"
        ),
        "cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454",
    ),
    (
        IntegId.HMAC_SHA2_512_256,
        b"\xaa" * 64,
        b"\xdd" * 50,
        (
            "2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8"
            "623c7b55cebefccf02d5581acc1c9d5fb1ff68a1de45509fbe4da9a433922655"
        ),
        "2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8",
    ),
    (
        IntegId.HMAC_SHA2_512_256,
        bytes(range(1, 65)),
        b"\xcd" * 50,
        (
            "5e6688e5a3daec826ca32eaea224eff5e700628947470e13ad01302561bab108"
            "b8c48cbc6b807dcfbd850521a685babc7eae4a2a2e660dc0e86b931d65503fd2"
        ),
        "5e6688e5a3daec826ca32eaea224eff5e700628947470e13ad01302561bab108",
    ),
]

_PRF_OF_INTEG = {
    IntegId.HMAC_SHA2_256_128: PrfId.HMAC_SHA2_256,
    IntegId.HMAC_SHA2_384_192: PrfId.HMAC_SHA2_384,
    IntegId.HMAC_SHA2_512_256: PrfId.HMAC_SHA2_512,
}


@pytest.mark.parametrize("integId,key,data,prfOutput,icv", RFC4868_AUTH)
def test_integMatchesRfc4868Section2_7_2(integId, key, data, prfOutput, icv):
    """
    HMAC-SHA-256-128/384-192/512-256 truncate to RFC 4868's authenticator values, the
    matching PRF gives the untruncated ones, and verify accepts exactly the right ICV.
    """
    integ = integAlgorithm(integId)
    assert len(key) == integ.keyLength
    assert integ.compute(key, data).hex() == icv
    assert prfAlgorithm(_PRF_OF_INTEG[integId]).compute(key, data).hex() == prfOutput
    expected = bytes.fromhex(icv)
    assert integ.verify(key, data, expected)
    assert not integ.verify(key, data, expected[:-1] + bytes((expected[-1] ^ 1,)))
    assert not integ.verify(key, data, expected[:-1])
    assert not integ.verify(key, data + b"x", expected)


# RFC 2202 section 3: HMAC-SHA-1 test cases 1, 2 and 5 (5 also gives the 96-bit digest).
RFC2202_SHA1 = [
    (b"\x0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    ),
    (b"\x0c" * 20, b"Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"),
]


@pytest.mark.parametrize("key,data,digest", RFC2202_SHA1)
def test_sha1PrfMatchesRfc2202(key, data, digest):
    assert prfAlgorithm(PrfId.HMAC_SHA1).compute(key, data).hex() == digest


def test_sha1IntegTruncatesTo96BitsAsRfc2202Case5():
    """HMAC-SHA1-96 is the first 12 bytes: RFC 2202's digest-96 of test case 5."""
    integ = integAlgorithm(IntegId.HMAC_SHA1_96)
    icv = integ.compute(b"\x0c" * 20, b"Test With Truncation")
    assert icv.hex() == "4c1a03424b55e07fe7f27be1"
    assert integ.verify(b"\x0c" * 20, b"Test With Truncation", icv)


@pytest.mark.parametrize(
    "entry", _readRsp("aes_gcm_nist.rsp", "Key"), ids=lambda e: e["Key"].hex()[:8]
)
def test_aesGcmCipherMatchesNistVectorsWithIpsecNonce(entry):
    """
    A NIST 96-bit IV split as RFC 4106/5282 do (salt = first 4 bytes, carried at the
    end of the key; explicit IV = last 8): seal gives CT | Tag, open gives PT back.
    """
    encr = encrAlgorithm(EncrId.AES_GCM_16, len(entry["Key"]) * 8)
    salt, iv = entry["IV"][:4], entry["IV"][4:]
    cipher = encr.newCipher(entry["Key"] + salt)
    sealed = cipher.seal(iv, entry["PT"], entry["AAD"])
    assert sealed == entry["CT"] + entry["Tag"]
    assert cipher.open(iv, sealed, entry["AAD"]) == entry["PT"]


def test_aesGcmOpenRejectsTamperingWithIntegrityError():
    entry = _readRsp("aes_gcm_nist.rsp", "Key")[0]
    salt, iv = entry["IV"][:4], entry["IV"][4:]
    cipher = encrAlgorithm(EncrId.AES_GCM_16, 128).newCipher(entry["Key"] + salt)
    sealed = entry["CT"] + entry["Tag"]
    for badIv, badSealed, badAad in (
        (iv, sealed[:-1] + bytes((sealed[-1] ^ 1,)), entry["AAD"]),
        (iv, bytes((sealed[0] ^ 0x80,)) + sealed[1:], entry["AAD"]),
        (iv, sealed, entry["AAD"] + b"\x00"),
        (bytes(8), sealed, entry["AAD"]),
        (iv, sealed[:15], entry["AAD"]),
    ):
        with pytest.raises(IntegrityError):
            cipher.open(badIv, badSealed, badAad)


def test_chachaPoly1305CipherMatchesRfc8439Section2_8_2():
    """
    RFC 8439's AEAD example through the IPsec construction of RFC 7634: the nonce's
    first 4 bytes are the salt at the end of the 36-byte key, the last 8 the IV.
    """
    key = bytes(range(0x80, 0xA0))
    nonce = bytes.fromhex("070000004041424344454647")
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    plaintext = (
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one "
        b"tip for the future, sunscreen would be it."
    )
    expected = bytes.fromhex(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
        "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
        "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
        "3ff4def08e4b7a9de576d26586cec64b6116"
        "1ae10b594f09e26a7e902ecbd0600691"
    )
    encr = encrAlgorithm(EncrId.CHACHA20_POLY1305)
    cipher = encr.newCipher(key + nonce[:4])
    assert cipher.seal(nonce[4:], plaintext, aad) == expected
    assert cipher.open(nonce[4:], expected, aad) == plaintext
    with pytest.raises(IntegrityError):
        cipher.open(nonce[4:], expected, aad[:-1])


@pytest.mark.parametrize(
    "entry", _readRsp("aes_cbc_nist.rsp", "KEY"), ids=lambda e: e["KEY"].hex()[:8]
)
def test_aesCbcCipherMatchesNistVectors(entry):
    encr = encrAlgorithm(EncrId.AES_CBC, len(entry["KEY"]) * 8)
    cipher = encr.newCipher(entry["KEY"])
    assert cipher.encrypt(entry["IV"], entry["PLAINTEXT"]) == entry["CIPHERTEXT"]
    assert cipher.decrypt(entry["IV"], entry["CIPHERTEXT"]) == entry["PLAINTEXT"]


def test_aesCbcDecryptRefusesPartialBlocks():
    cipher = encrAlgorithm(EncrId.AES_CBC, 128).newCipher(bytes(16))
    for length in (0, 1, 15, 17, 33):
        with pytest.raises(DecryptError):
            cipher.decrypt(bytes(16), bytes(length))


@pytest.mark.parametrize(
    "transformId,keyLength,keyBytes,ivLength,icvLength,isAead",
    [
        (EncrId.AES_CBC, 128, 16, 16, 0, False),
        (EncrId.AES_CBC, 192, 24, 16, 0, False),
        (EncrId.AES_CBC, 256, 32, 16, 0, False),
        (EncrId.AES_GCM_16, 128, 20, 8, 16, True),
        (EncrId.AES_GCM_16, 192, 28, 8, 16, True),
        (EncrId.AES_GCM_16, 256, 36, 8, 16, True),
        (EncrId.CHACHA20_POLY1305, None, 36, 8, 16, True),
    ],
)
def test_encrDescriptionsHaveTheRfcSizes(
    transformId, keyLength, keyBytes, ivLength, icvLength, isAead
):
    """
    Key material includes the 4-byte salt for AES-GCM (RFC 5282 section 7.1) and
    ChaCha20-Poly1305 (RFC 7634 section 2); CBC IVs are a block, AEAD IVs 8 bytes.
    """
    encr = encrAlgorithm(transformId, keyLength)
    assert (encr.keyBytes, encr.ivLength, encr.icvLength, encr.isAead) == (
        keyBytes,
        ivLength,
        icvLength,
        isAead,
    )
    assert encr.blockSize == (1 if isAead else 16)


@pytest.mark.parametrize(
    "integId,keyLength,icvLength",
    [
        (IntegId.HMAC_SHA1_96, 20, 12),
        (IntegId.HMAC_SHA2_256_128, 32, 16),
        (IntegId.HMAC_SHA2_384_192, 48, 24),
        (IntegId.HMAC_SHA2_512_256, 64, 32),
    ],
)
def test_integDescriptionsHaveTheRfcSizes(integId, keyLength, icvLength):
    integ = integAlgorithm(integId)
    assert (integ.keyLength, integ.icvLength) == (keyLength, icvLength)


@pytest.mark.parametrize(
    "prfId,length",
    [
        (PrfId.HMAC_SHA1, 20),
        (PrfId.HMAC_SHA2_256, 32),
        (PrfId.HMAC_SHA2_384, 48),
        (PrfId.HMAC_SHA2_512, 64),
    ],
)
def test_prfKeyLengthIsItsOutputLength(prfId, length):
    prf = prfAlgorithm(prfId)
    assert prf.outputLength == prf.keyLength == length


@pytest.mark.parametrize(
    "transformId,keyLength",
    [
        (EncrId.AES_CBC, None),
        (EncrId.AES_CBC, 512),
        (EncrId.AES_GCM_16, None),
        (EncrId.AES_GCM_8, 128),
        (EncrId.THREE_DES, None),
        (EncrId.CHACHA20_POLY1305, 256),
        (9999, None),
    ],
)
def test_unsupportedEncrRaisesUnsupportedTransform(transformId, keyLength):
    """An AES transform without KEY_LENGTH, or any algorithm not implemented, is refused."""
    with pytest.raises(UnsupportedTransform):
        encrAlgorithm(transformId, keyLength)


def test_unsupportedPrfAndIntegRaiseUnsupportedTransform():
    for prfId in (PrfId.HMAC_MD5, PrfId.AES128_XCBC, 0, 99):
        with pytest.raises(UnsupportedTransform):
            prfAlgorithm(prfId)
    for integId in (IntegId.NONE, IntegId.HMAC_MD5_96, IntegId.AES_XCBC_96, 99):
        with pytest.raises(UnsupportedTransform):
            integAlgorithm(integId)


def test_newCipherRefusesWrongKeyLength():
    for encr, length in (
        (encrAlgorithm(EncrId.AES_CBC, 128), 20),
        (encrAlgorithm(EncrId.AES_GCM_16, 256), 32),
        (encrAlgorithm(EncrId.CHACHA20_POLY1305), 32),
    ):
        with pytest.raises(CryptoError):
            encr.newCipher(bytes(length))


def test_strongSwanNamesMapToTheRightAlgorithms():
    """strongSwan's aliases name the same transforms it does."""
    assert ENCR_NAMES["aes"] is ENCR_NAMES["aes128"]
    assert ENCR_NAMES["aes256"] == encrAlgorithm(EncrId.AES_CBC, 256)
    for bits in (128, 192, 256):
        gcm = encrAlgorithm(EncrId.AES_GCM_16, bits)
        for suffix in ("gcm16", "gcm128", "gcm"):
            assert ENCR_NAMES[f"aes{bits}{suffix}"] == gcm
    assert ENCR_NAMES["chacha20poly1305"] == encrAlgorithm(EncrId.CHACHA20_POLY1305)
    assert INTEG_NAMES["sha256"].transformId == IntegId.HMAC_SHA2_256_128
    assert INTEG_NAMES["sha2_512"].transformId == IntegId.HMAC_SHA2_512_256
    assert PRF_NAMES["prfsha384"].transformId == PrfId.HMAC_SHA2_384
    assert PRF_FOR_INTEG[IntegId.HMAC_SHA1_96].transformId == PrfId.HMAC_SHA1
    assert KE_NAMES["curve25519"] == KE_NAMES["x25519"] == KeGroup.CURVE25519
    assert KE_NAMES["curve448"] == KeGroup.CURVE448
    assert KE_NAMES["modp2048"] == KeGroup.MODP_2048
    assert KE_NAMES["ecp521"] == KeGroup.ECP_521
    for name, encr in ENCR_NAMES.items():
        assert name.startswith(encr.name.replace("gcm16", "gcm")) or name == "aes"
