"""
A debugging aid: IKE SA keys as lines of Wireshark's "IKEv2 Decryption Table"
(C{ikev2_decryption_table}), the same table strongSwan's save-keys plugin writes.

Only ever enabled by C{save_keys} in the configuration; anyone holding the file can decrypt the
IKE traffic it describes, so the service creates it readable by its owner only and warns at start.
"""

from ikehub.wire.constants import EncrId, IntegId

#: Wireshark's names for the encryption algorithms, by (transform id, key bits).
_ENCR_NAMES = {
    (EncrId.AES_CBC, 128): "AES-CBC-128 [RFC3602]",
    (EncrId.AES_CBC, 192): "AES-CBC-192 [RFC3602]",
    (EncrId.AES_CBC, 256): "AES-CBC-256 [RFC3602]",
    (EncrId.AES_GCM_16, 128): "AES-GCM-128 with 16 octet ICV [RFC5282]",
    (EncrId.AES_GCM_16, 192): "AES-GCM-192 with 16 octet ICV [RFC5282]",
    (EncrId.AES_GCM_16, 256): "AES-GCM-256 with 16 octet ICV [RFC5282]",
}
_INTEG_NAMES = {
    None: "NONE [RFC4306]",
    IntegId.HMAC_SHA1_96: "HMAC_SHA1_96 [RFC2404]",
    IntegId.HMAC_SHA2_256_128: "HMAC_SHA2_256_128 [RFC4868]",
    IntegId.HMAC_SHA2_384_192: "HMAC_SHA2_384_192 [RFC4868]",
    IntegId.HMAC_SHA2_512_256: "HMAC_SHA2_512_256 [RFC4868]",
}


def wiresharkKeyLine(sa) -> str:
    """
    One table row for an IKE SA whose keys are installed: SPIs, SK_ei, SK_er, the encryption
    algorithm, SK_ai, SK_ar, the integrity algorithm. Algorithms Wireshark cannot decrypt (such
    as ChaCha20-Poly1305) are named by ikehub's own name, so the keys are still recorded.
    """
    suite, keys = sa.suite, sa.keys
    encr = _ENCR_NAMES.get((suite.encr.transformId, suite.encr.keyLength), suite.encr.name)
    integId = suite.integ.transformId if suite.integ is not None else None
    integ = _INTEG_NAMES.get(integId, suite.integ.name if suite.integ else "NONE")
    return (
        f'{sa.spiI.hex()},{sa.spiR.hex()},0x{keys.skEi.hex()},0x{keys.skEr.hex()},"{encr}",'
        f'0x{keys.skAi.hex()},0x{keys.skAr.hex()},"{integ}"\n'
    )
