"""
What the handshake fast path remembers or shortcuts changes no outcome: PSK key pads, NAT
detection address packing, lazily written PAD reasons, the established event's fields, the
IKE send path, and repeated handshakes served from remembered choices.
"""

import hashlib
import hmac
import ipaddress
import socket

import pytest
from twisted.logger import Logger

from ikehub.crypto.transforms import prfAlgorithm
from ikehub.ike import psk as pskModule
from ikehub.ike.nat import _packedAddress, natDetectionHash
from ikehub.ike.psk import KEY_PAD, pskAuthData, pskKeyPad, verifyPskAuth
from ikehub.policy.pad import PAD, PADEntry
from ikehub.wire.constants import PrfId
from ikehub.wire.identity import Identity
from tests.ikepump import PSK, Pair, clientSpec, makePool

PRF256 = prfAlgorithm(PrfId.HMAC_SHA2_256)
PRF384 = prfAlgorithm(PrfId.HMAC_SHA2_384)


# -- PSK AUTH ------------------------------------------------------------------------------


def referenceAuth(digest, psk: bytes, octets: bytes) -> bytes:
    """RFC 7296 section 2.15 with the standard library's HMAC, independent of ours."""
    keyPad = hmac.new(psk, KEY_PAD, digest).digest()
    return hmac.new(keyPad, octets, digest).digest()


@pytest.mark.parametrize("prf, digest", [(PRF256, hashlib.sha256), (PRF384, hashlib.sha384)])
def test_pskAuthDataMatchesTheRfcFormulaEveryTime(prf, digest):
    """The remembered key pad gives the RFC's AUTH value, first time and later, per PRF."""
    for psk in (b"first key of some length", b"second key of some length"):
        for _ in range(2):
            octets = b"signed octets " + psk
            assert pskAuthData(prf, psk, octets) == referenceAuth(digest, psk, octets)
            assert pskKeyPad(prf, psk) == hmac.new(psk, KEY_PAD, digest).digest()


def test_wrongKeyStillFailsAfterTheRightOneWasUsed():
    """Remembering one PSK's pad never makes another key verify."""
    octets = b"octets"
    good = pskAuthData(PRF256, b"the right key 0123", octets)
    assert verifyPskAuth(PRF256, b"the right key 0123", octets, good)
    assert not verifyPskAuth(PRF256, b"the wrong key 0123", octets, good)


def test_keyPadMemoryIsBounded(monkeypatch):
    """However many PSKs pass through, at most the bound is remembered."""
    monkeypatch.setattr(pskModule, "_KEY_PADS_LIMIT", 8)
    monkeypatch.setattr(pskModule, "_keyPads", {})
    for n in range(20):
        pskKeyPad(PRF256, b"key number %d" % n)
        assert len(pskModule._keyPads) <= 8


# -- NAT detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["192.0.2.1", "0.0.0.0", "::1", "2001:db8::5", "::ffff:192.0.2.1", "fe80::1%eth0"]
)
def test_packedAddressIsIpaddressPacked(host):
    """The inet_pton shortcut packs exactly as ipaddress does, scoped IPv6 included."""
    assert _packedAddress(host) == ipaddress.ip_address(host).packed


@pytest.mark.parametrize("host", ["192.0.2", "01.2.3.4", "example.com", ""])
def test_packedAddressRefusesWhatIpaddressRefuses(host):
    """Anything that is not an address raises ValueError, as before."""
    with pytest.raises(ValueError):
        _packedAddress(host)


def test_natDetectionHashIsSha1OfSpisAddressAndPort():
    """RFC 7296 section 2.23: SHA-1(SPIi | SPIr | IP | port)."""
    spiI, spiR = bytes(range(8)), bytes(range(8, 16))
    expected = hashlib.sha1(spiI + spiR + bytes([192, 0, 2, 1]) + (4500).to_bytes(2, "big"))
    assert natDetectionHash(spiI, spiR, "192.0.2.1", 4500) == expected.digest()


# -- PAD -----------------------------------------------------------------------------------


def test_padDecisionStillSaysWhy():
    """The reason, now written when read, names the identity and the entry (or its absence)."""
    entry = PADEntry("roadwarriors", Identity.fromString("*@example.com"), "psk", PSK, None, (), ())
    pad = PAD([entry])
    matched = pad.lookup(Identity.fromString("alice@example.com"), "192.0.2.11")
    assert matched.entry is entry
    assert matched.reason == (
        "identity alice@example.com from 192.0.2.11 matched PAD entry 'roadwarriors'"
    )
    refused = pad.lookup(Identity.fromString("mallory@example.org"), "192.0.2.11")
    assert refused.entry is None
    assert refused.reason == (
        "no PAD entry accepts identity mallory@example.org from 192.0.2.11 "
        "(entry 'roadwarriors': identity pattern *@example.com does not match)"
    )


# -- the responder ---------------------------------------------------------------------------


def test_establishedEventKeepsEveryField():
    """The ike_sa_established event carries the same structured fields as before."""
    pair = Pair()
    events = []
    pair.hub.log = Logger("ikehub.ike.endpoint.IKEEndpoint", pair.hub, observer=events.append)
    results, failures = pair.connect()
    assert failures == []
    [event] = [e for e in events if e.get("event") == "ike_sa_established"]
    sa = results[0]
    assert event["identity"] == "alice@example.com"
    assert event["entry"] == "roadwarriors"
    assert event["vip"] == str(sa.virtualIps[0][1])
    assert event["peer"] == "192.0.2.11:4500"  # the client floated to NAT-T
    assert (event["spi_i"], event["spi_r"]) == (sa.spiI.hex(), sa.spiR.hex())
    [child] = pair.hub.sas[sa.spiR].children
    assert event["children"] == [child.inboundSpi.hex()]
    assert "{peer}" in event["log_format"] and "{identity}" in event["log_format"]


def test_repeatedHandshakesGetFreshKeysSpisAndAddresses():
    """
    Handshakes served from remembered choices and decodings still get their own SPIs, keys,
    CHILD SA SPIs and addresses, and each answer names the client's own ESP SPI.
    """
    pair = Pair(pool=makePool("198.51.100.10-198.51.100.40"))
    sas = []
    for _ in range(5):
        results, failures = pair.connect(clientSpec())
        assert failures == []
        sas.append(results[0])
    hubSas = [pair.hub.sas[sa.spiR] for sa in sas]
    assert len({sa.spiR for sa in sas}) == 5
    assert len({sa.keys.skEr for sa in hubSas}) == 5
    assert len({address for sa in hubSas for _, address in sa.virtualIps}) == 5
    for client, hub in zip(sas, hubSas):
        [clientChild] = client.children
        [hubChild] = hub.children
        assert hubChild.outboundSpi == clientChild.inboundSpi
        assert clientChild.outboundSpi == hubChild.inboundSpi
        assert hubChild.encrIn == clientChild.encrOut


# -- the IKE send path -----------------------------------------------------------------------


@pytest.mark.parametrize("family, host", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
@pytest.mark.parametrize("framed", [True, False])
def test_sendIkeReachesThePeerOverEitherFamily(family, host, framed):
    """
    IKE written straight to the socket arrives as Twisted's write delivered it, with the non-ESP
    marker when framed, over IPv4 and IPv6.
    """
    from twisted.internet.protocol import DatagramProtocol

    from ikehub.esp.sad import SAD
    from ikehub.ike.counters import Counters
    from ikehub.net.udp import IKEDatagramProtocol, sendVia

    try:
        sink = socket.socket(family, socket.SOCK_DGRAM)
        sink.bind((host, 0))
    except OSError:
        pytest.skip(f"no {host} here")
    sender = socket.socket(family, socket.SOCK_DGRAM)
    sender.bind((host, 0))
    protocol = IKEDatagramProtocol(DatagramProtocol(), SAD(), Counters(), isNattPort=framed)
    protocol.transport = type("Port", (), {"socket": sender})()
    protocol.startProtocol()
    sink.settimeout(5)
    try:
        path = protocol.framedPath if framed else protocol.plainPath
        sendVia(b"an IKE message", sink.getsockname()[:2], path)
        data, _ = sink.recvfrom(100)
    finally:
        sink.close()
        sender.close()
    assert data == (b"\x00\x00\x00\x00" if framed else b"") + b"an IKE message"
    assert protocol.counters["send_failed"] == 0
