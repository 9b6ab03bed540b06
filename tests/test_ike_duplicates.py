"""
The PAD's duplicates policy (strongSwan's "unique") and INITIAL_CONTACT, in memory: a second
IKE SA for an identity that has one replaces it ("replace": the old peer gets a Delete and its
address goes to the new SA), is refused ("keep", unless it says INITIAL_CONTACT), or lives
beside it ("never", several devices per user).
"""

from ikehub.esp.sad import SAD
from ikehub.ike.endpoint import IKEEndpoint
from ikehub.ike.sa import IKEState
from ikehub.policy.pad import PAD
from ikehub.wire.constants import NotifyType
from tests.ikepump import HUB, Pair, clientSpec, hubSettings, makePool, padWith

SECOND_DEVICE = "192.0.2.12"


def pairWith(policy):
    pool = makePool()
    return Pair(pad=padWith(pool, duplicates=policy), pool=pool)


def connect(pair, **spec):
    results, failures = pair.connect(clientSpec(requestVirtualIp=True, **spec))
    return results[0] if results else failures[0].value


def established(pair):
    return [sa for sa in pair.hub.sas.values() if sa.state is IKEState.ESTABLISHED]


def test_replaceDeletesTheOldSaAndHandsItsAddressOver():
    pair = pairWith("replace")
    first = connect(pair)
    [(_, address)] = first.virtualIps
    second = connect(pair)
    [hubSa] = established(pair)
    assert hubSa.spiI == second.spiI
    # The old client SA heard the hub's Delete and is gone.
    assert first.state is IKEState.DEAD
    assert [a for _, a in second.virtualIps] == [address]
    assert pair.hub.counters["ike_sa_replaced"] == 1
    assert list(pair.hub.byIdentity) == ["alice@example.com"]


def connectFromSecondDevice(pair, **spec):
    """The same identity from another address (another device)."""
    device = IKEEndpoint(
        hubSettings(), PAD([]), SAD(), pair.clock, pair.net.sender(SECOND_DEVICE), floatPath=4500
    )
    pair.net.attach(SECOND_DEVICE, device)
    results, failures = [], []
    device.initiate(clientSpec(requestVirtualIp=True, **spec), (HUB, 500), 500).addCallbacks(
        results.append, failures.append
    )
    pair.net.pump()
    return results[0] if results else failures[0].value


def test_keepRefusesTheNewSaUnlessInitialContact():
    pair = pairWith("keep")
    first = connect(pair)
    refused = connectFromSecondDevice(pair)
    assert refused.notifyType == NotifyType.AUTHENTICATION_FAILED
    [hubSa] = established(pair)
    assert hubSa.spiI == first.spiI
    rebooted = connectFromSecondDevice(pair, initialContact=True)
    [hubSa] = established(pair)
    assert hubSa.spiI == rebooted.spiI


def test_keepLetsADeviceReauthenticateFromItsAddress():
    """
    A new IKE SA from the address of the existing one is the device reauthenticating: it
    replaces its own SA, with its address, even under "keep".
    """
    pair = pairWith("keep")
    first = connect(pair)
    [(_, address)] = first.virtualIps
    again = connect(pair)
    [hubSa] = established(pair)
    assert hubSa.spiI == again.spiI
    assert [a for _, a in again.virtualIps] == [address]
    assert pair.hub.counters["ike_sa_replaced"] == 1


def test_neverKeepsBothEvenWithInitialContact():
    pair = pairWith("never")
    connect(pair)
    connect(pair, initialContact=True)
    assert len(established(pair)) == 2
    assert len(pair.hub.byIdentity["alice@example.com"]) == 2


def test_indexForgetsRemovedSas():
    pair = pairWith("never")
    sa = connect(pair)
    [hubSa] = established(pair)
    pair.hub.removeSa(hubSa, "test")
    assert pair.hub.byIdentity == {}
    assert sa is not None
