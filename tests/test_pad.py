"""
The PAD's decisions and their records (RFC 4301 section 4.4.3): the first entry whose identity
pattern and remote_addrs admit the peer governs it, and the record says why every entry before
it did not.
"""

import ipaddress

from ikehub.policy.pad import PAD, PADEntry
from ikehub.wire.identity import Identity

PSK = b"p" * 20


def entry(name, identity, **kw):
    fields = dict(auth="psk", psk=PSK, pool=None, localTs=(), remoteTs=())
    fields.update(kw)
    return PADEntry(name, Identity.fromString(identity), **fields)


NETS = (ipaddress.ip_network("192.0.2.0/25"),)
PAD_TABLE = PAD(
    [
        entry("gateways", "gw.example.com", auth="pubkey", psk=None, remoteAddrs=NETS),
        entry("staff", "*@example.com", auth="eap-mschapv2", psk=None, groups=("staff",)),
        entry("anyone", "*@example.org"),
    ]
)


def test_firstMatchingEntryGovernsAndRecordNamesThoseSkipped():
    decision = PAD_TABLE.lookup(Identity.fromString("bob@example.com"), "192.0.2.200")
    assert decision.entry.name == "staff"
    assert decision.rejections == [("gateways", "identity pattern gw.example.com does not match")]
    assert "matched PAD entry 'staff'" in decision.reason
    assert "entry 'gateways': identity pattern gw.example.com does not match" in decision.reason


def test_peerAddressOutsideRemoteAddrsIsRefusedAndExplained():
    """A valid identity from a disallowed address matches no entry, and the record says so."""
    decision = PAD_TABLE.lookup(Identity.fromString("gw.example.com"), "192.0.2.200")
    assert decision.entry is None
    assert "entry 'gateways': peer address 192.0.2.200 is outside remote_addrs (192.0.2.0/25)" in (
        decision.reason
    )
    inside = PAD_TABLE.lookup(Identity.fromString("gw.example.com"), "192.0.2.5")
    assert inside.entry.name == "gateways"


def test_explainAnswersForAnyIdentityAndAddress():
    text = PAD_TABLE.explain(Identity.fromString("mallory@example.net"), "203.0.113.9")
    assert text.startswith("no PAD entry accepts identity mallory@example.net from 203.0.113.9")
    for name in ("gateways", "staff", "anyone"):
        assert f"entry '{name}'" in text


def test_groupRefusalNamesTheGroups():
    staff = PAD_TABLE.entries[1]
    assert staff.groupRefusal(("staff", "vpn")) is None
    why = staff.groupRefusal(("students",))
    assert "staff" in why and "students" in why
    assert PAD_TABLE.entries[2].groupRefusal(()) is None


def test_emptyPadSaysSo():
    decision = PAD([]).lookup(Identity.fromString("a@example.com"), "192.0.2.1")
    assert decision.entry is None and "the PAD is empty" in decision.reason


def test_addressRangeIdentitiesAndEapIdentityPatterns():
    """An entry may name identities by address range, and the EAP identities it admits."""
    from ikehub.policy.identities import parseIdentityPattern

    devices = PADEntry("devices", parseIdentityPattern("192.0.2.0/28"), "psk", PSK, None, (), ())
    ranged = PADEntry(
        "ranged", parseIdentityPattern("2001:db8::10-2001:db8::20"), "psk", PSK, None, (), ()
    )
    staff = PADEntry(
        "staff",
        Identity.fromString("*@example.com"),
        "eap-mschapv2",
        None,
        None,
        (),
        (),
        eapIdentities=(parseIdentityPattern("*@corp.example.com"),),
    )
    pad = PAD([devices, ranged, staff])
    assert pad.lookup(Identity.fromString("192.0.2.9"), "192.0.2.9").entry is devices
    assert pad.lookup(Identity.fromString("2001:db8::15"), "192.0.2.9").entry is ranged
    missed = pad.lookup(Identity.fromString("192.0.2.99"), "192.0.2.99")
    assert missed.entry is None
    assert "entry 'devices': identity pattern 192.0.2.0/28 does not match" in missed.reason
    assert staff.eapIdentityRefusal("bob@corp.example.com") is None
    why = staff.eapIdentityRefusal("bob")
    assert "'bob' is not among eap_identities (*@corp.example.com)" in why
    assert entry("any", "*@example.com").eapIdentityRefusal("anything") is None


def test_identityPatternsAreParsedStrictly():
    import pytest

    from ikehub.policy.identities import AddressRangePattern, parseIdentityPattern

    assert isinstance(parseIdentityPattern("192.0.2.10-192.0.2.20"), AddressRangePattern)
    assert parseIdentityPattern("vpn-gw.example.com") == Identity.fromString("vpn-gw.example.com")
    for bad in ("192.0.2.1/24", "192.0.2.20-192.0.2.10", "192.0.2.1-2001:db8::1"):
        with pytest.raises(ValueError):
            parseIdentityPattern(bad)
