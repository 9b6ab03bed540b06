"""
Tests for address leases: L{ikehub.policy.pool.AddressPool} with a lease time and a clock, the
SQLite store that keeps leases across restarts (L{ikehub.policy.leases}), and the configuration
keys C{pools.NAME.lease_time} and C{hub.lease_db}.
"""

import os
import sqlite3
import textwrap
from ipaddress import ip_address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from zope.interface.verify import verifyObject

from ikehub.config import ConfigError, loadConfig
from ikehub.interfaces import IAddressPool
from ikehub.policy.leases import LeaseStore, LeaseStoreError, checkLeaseDb
from ikehub.policy.pool import DEFAULT_LEASE_TIME, AddressPool
from ikehub.service import IKEHubService, buildPools

HOUR = 3600.0


def leasing(text="192.0.2.1-192.0.2.4", leaseTime=HOUR, clock=None, store=None, **kwargs):
    clock = clock if clock is not None else Clock()
    return AddressPool.fromString(
        "rw", text, leaseTime=leaseTime, clock=clock, store=store, **kwargs
    )


def a(text):
    return ip_address(text)


# -- stickiness and the order of reuse ------------------------------------------------------


def test_leasingPoolProvidesIAddressPool():
    """A pool with leases still implements the interface the IKE layer uses, unchanged."""
    assert verifyObject(IAddressPool, leasing())


def test_defaultLeaseTimeIsAnHour():
    """A pool built without a lease time keeps leases for an hour."""
    assert AddressPool.fromString("rw", "192.0.2.1").leaseTime == DEFAULT_LEASE_TIME == HOUR


def test_returningIdentityGetsItsLeaseBack():
    """While its lease runs, an identity gets its released address again."""
    clock = Clock()
    p = leasing(clock=clock)
    alice = p.acquire("alice")
    assert p.release(alice)
    clock.advance(HOUR - 1)
    assert p.leaseOf("alice") == alice
    assert p.acquire("alice") == alice
    assert p.leaseOf("alice") is None  # lent again, so no longer a lease


def test_otherIdentitiesDoNotGetARunningLeaseWhileFreeAddressesExist():
    """Someone else's running lease is skipped while never-used addresses remain."""
    p = leasing()
    alice = p.acquire("alice")
    p.release(alice)
    others = [p.acquire(name) for name in ("bob", "carol", "dave")]
    assert alice not in others
    assert None not in others
    assert p.acquire("alice") == alice


def test_distinctIdentitiesGetDistinctAddresses():
    """Every identity connected at once has its own address."""
    p = leasing("192.0.2.0/24")
    got = [p.acquire(f"user{i}") for i in range(254)]
    assert len(set(got)) == 254
    assert p.acquire("one-too-many") is None


def test_oneIdentityWithTwoSasGetsBothBack():
    """An identity with two SAs (two devices) keeps both addresses as leases."""
    p = leasing()
    first, second = p.acquire("alice"), p.acquire("alice")
    assert first != second
    p.release(first)
    p.release(second)
    assert {p.acquire("alice"), p.acquire("alice")} == {first, second}


def test_exhaustionReturnsNoneOnlyWhenEveryAddressIsLent():
    """None means every address is lent to a connected peer; running leases do not count."""
    p = leasing("192.0.2.1-192.0.2.2")
    alice, bob = p.acquire("alice"), p.acquire("bob")
    assert p.acquire("carol") is None
    p.release(alice)
    # The pool is otherwise full: alice's running lease goes to carol rather than refusing her.
    assert p.acquire("carol") == alice
    assert p.leaseOf("alice") is None
    assert p.acquire("alice") is None
    p.release(bob)
    assert p.acquire("alice") == bob


def test_reuseOrderFreshThenExpiredThenRunningOldestFirst():
    """
    Without a lease of its own, an identity gets a fresh address, else the expired leases,
    oldest first, else the running leases closest to expiring.
    """
    clock = Clock()
    p = leasing("192.0.2.1-192.0.2.5", clock=clock)
    addresses = [p.acquire(name) for name in ("a", "b", "c", "d")]
    p.release(addresses[2])  # c: at 0
    clock.advance(10)
    p.release(addresses[0])  # a: at 10
    clock.advance(HOUR)  # both have expired now
    p.release(addresses[3])  # d: running, released at 3610
    clock.advance(10)
    p.release(addresses[1])  # b: running, released at 3620
    assert p.acquire("x") == a("192.0.2.5")  # never used
    assert p.acquire("y") == addresses[2]  # expired longest ago
    assert p.acquire("z") == addresses[0]
    assert p.acquire("v") == addresses[3]  # running, the oldest release
    assert p.leaseOf("b") == addresses[1]
    assert p.acquire("w") == addresses[1]
    assert p.acquire("u") is None


def test_leaseExpiresAfterLeaseTime():
    """At lease_time after the release the lease ends: a fresh address comes first again."""
    clock = Clock()
    p = leasing(clock=clock)
    alice = p.release(p.acquire("alice")) and a("192.0.2.1")
    clock.advance(HOUR)
    assert p.leaseOf("alice") is None
    assert p.leases == 0
    assert p.acquire("alice") == a("192.0.2.2")
    # The expired address is free for anyone, ahead of nothing but fresh ones.
    assert p.acquire("bob") == a("192.0.2.3")
    assert p.acquire("carol") == a("192.0.2.4")
    assert p.acquire("dave") == alice


def test_leaseTimeZeroMeansNoLeases():
    """lease_time = 0: a released address is simply free; its holder has no claim on it."""
    p = leasing(leaseTime=0)
    alice = p.acquire("alice")
    p.release(alice)
    assert p.leaseOf("alice") is None
    assert p.acquire("alice") != alice


def test_withoutAClockLeasesNeverExpire():
    """A pool given no clock sees no time pass: leases are kept (up to rememberLimit)."""
    p = AddressPool.fromString("rw", "192.0.2.1-192.0.2.9", leaseTime=1)
    alice = p.acquire("alice")
    p.release(alice)
    assert p.acquire("bob") != alice
    assert p.acquire("alice") == alice


def test_releaseOrderDoesNotLeakMemoryWithoutAClock():
    """Connect-disconnect loops of one identity on a clockless pool keep the queue bounded."""
    p = AddressPool.fromString("rw", "192.0.2.1-192.0.2.9")
    for _ in range(10000):
        p.release(p.acquire("alice"))
    assert len(p._claimQueue) < 200


@pytest.mark.parametrize("leaseTime", [-1, float("inf"), float("nan")])
def test_badLeaseTimeIsValueError(leaseTime):
    """The lease time is a finite number of seconds, 0 or more."""
    with pytest.raises(ValueError):
        leasing(leaseTime=leaseTime)


def test_ipv6PoolLeasesStickyAddresses():
    """IPv6 pools lease the same way: the identity gets its address back, others do not."""
    clock = Clock()
    p = leasing("2001:db8:1::/64", clock=clock)
    alice = p.acquire("alice")
    assert alice == a("2001:db8:1::1")
    p.release(alice)
    assert p.acquire("bob") == a("2001:db8:1::2")
    assert p.acquire("alice") == alice


# -- the store ------------------------------------------------------------------------------


def test_leasesSurviveARestart(tmp_path):
    """
    A second pool on the same file gives every identity its address back: released ones and
    ones still lent when the hub stopped; newcomers get other addresses.
    """
    path = str(tmp_path / "leases.sqlite")
    clock = Clock()
    clock.advance(1_000_000)
    store = LeaseStore.open(path, clock)
    p = leasing("192.0.2.1-192.0.2.10", clock=clock, store=store)
    alice, bob = p.acquire("alice"), p.acquire("bob")
    p.release(alice)
    store.close()

    clock.advance(60)
    store = LeaseStore.open(path, clock)
    p = leasing("192.0.2.1-192.0.2.10", clock=clock, store=store)
    assert p.leaseOf("alice") == alice
    assert p.leaseOf("bob") == bob  # lent at the stop: a lease from the start on
    assert p.acquire("carol") not in (alice, bob)
    assert p.acquire("bob") == bob
    assert p.acquire("alice") == alice
    store.close()


def test_restartCanBeAnotherIPv6Pool(tmp_path):
    """IPv4 and IPv6 pools share one store, each taking its own leases."""
    path = str(tmp_path / "leases.sqlite")
    clock = Clock()
    store = LeaseStore.open(path, clock)
    v4 = leasing("192.0.2.1-192.0.2.10", clock=clock, store=store)
    v6 = leasing("2001:db8::/120", clock=clock, store=store)
    v4.release(v4.acquire("alice"))
    v6.release(v6.acquire("alice"))
    store.close()
    store = LeaseStore.open(path, clock)
    v6 = leasing("2001:db8::/120", clock=clock, store=store)
    v4 = leasing("192.0.2.1-192.0.2.10", clock=clock, store=store)
    assert (v4.leaseOf("alice"), v6.leaseOf("alice")) == (a("192.0.2.1"), a("2001:db8::1"))
    store.close()


def test_expiredLeasesAreDroppedAtStart(tmp_path):
    """Leases that ran out while the hub was down are deleted, and their addresses are fresh."""
    path = str(tmp_path / "leases.sqlite")
    clock = Clock()
    store = LeaseStore.open(path, clock)
    p = leasing(clock=clock, store=store)
    p.release(p.acquire("alice"))
    store.close()
    clock.advance(HOUR)
    store = LeaseStore.open(path, clock)
    p = leasing(clock=clock, store=store)
    assert p.leaseOf("alice") is None
    assert p.acquire("bob") == a("192.0.2.1")
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT address, identity FROM leases").fetchall() == [
            ("192.0.2.1", "bob")
        ]


def test_leasesOutsideTheConfiguredPoolAreIgnored(tmp_path):
    """When the pool changed, stored leases of addresses it no longer holds are ignored."""
    path = str(tmp_path / "leases.sqlite")
    clock = Clock()
    store = LeaseStore.open(path, clock)
    p = leasing("192.0.2.1-192.0.2.4", clock=clock, store=store)
    [p.acquire(name) for name in ("a", "b", "c", "d")]
    store.close()
    store = LeaseStore.open(path, clock)
    p = leasing("192.0.2.3-192.0.2.6", clock=clock, store=store)
    assert p.leases == 2
    assert (p.leaseOf("a"), p.leaseOf("c")) == (None, a("192.0.2.3"))
    assert p.acquire("e") == a("192.0.2.5")  # fresh: .3 and .4 are c's and d's leases
    assert p.acquire("f") == a("192.0.2.6")
    assert p.acquire("a") == a("192.0.2.3")  # full: the oldest lease goes
    store.close()


def test_writesAreBatchedOnTheClock(tmp_path):
    """Changes reach the file in one transaction, flushInterval after the first of them."""
    path = str(tmp_path / "leases.sqlite")
    clock = Clock()
    store = LeaseStore.open(path, clock, flushInterval=1.0)
    p = leasing("192.0.2.0/24", clock=clock, store=store)
    for i in range(100):
        p.release(p.acquire(f"user{i}"))
    assert store.commits == 0 and store.pending == 100
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM leases").fetchone() == (0,)
    clock.advance(1.0)
    assert (store.commits, store.written, store.pending) == (1, 100, 0)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM leases").fetchone() == (100,)
    assert not clock.getDelayedCalls()  # nothing pending, no timer
    store.close()


def test_storeUsesWalAndSynchronousNormal(tmp_path):
    """The file is in WAL mode, so commits are appends, not rewrites."""
    path = str(tmp_path / "leases.sqlite")
    LeaseStore.open(path, Clock()).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


class _FailingConnection:
    """An sqlite3 connection whose disk is full."""

    def __init__(self):
        self.fail = True

    def execute(self, sql, *args):
        if self.fail and sql != "ROLLBACK":
            raise sqlite3.OperationalError("database or disk is full")
        return self

    def executemany(self, sql, rows):
        return self.execute(sql)

    def close(self):
        pass


def test_failedWriteKeepsChangesAndRetries():
    """A write that fails keeps the changes (newest wins) and tries again a little later."""
    connection = _FailingConnection()
    clock = Clock()
    store = LeaseStore(connection, "/full/leases.sqlite", clock, [], flushInterval=1.0)
    store.record("192.0.2.1", "alice", None)
    clock.advance(1.0)
    assert store.pending == 1 and store.commits == 0
    store.record("192.0.2.1", "alice", 5.0)
    connection.fail = False
    clock.advance(1.0)
    assert store.pending == 0 and store.commits == 1


def test_closeWritesWhatIsPending(tmp_path):
    """Closing the store writes every pending change first."""
    path = str(tmp_path / "leases.sqlite")
    clock = Clock()
    store = LeaseStore.open(path, clock)
    p = leasing(clock=clock, store=store)
    p.release(p.acquire("alice"))
    store.close()
    assert store.closed and not clock.getDelayedCalls()
    assert LeaseStore.open(path, clock).rows() == [("192.0.2.1", "alice", 0.0)]


# -- opening the store, and the configuration ------------------------------------------------

MINIMAL = """
[hub]
identity = "hub.example.com"
{hub}

[pools.rw]
addresses = "192.0.2.1-192.0.2.10"
{pool}

[[peers]]
identity = "alice@example.com"
auth = "psk"
psk = "correct-horse-battery-staple-42"
pool = "rw"
"""


def configFile(tmp_path, hub="", pool=""):
    path = tmp_path / "ikehub.toml"
    path.write_text(textwrap.dedent(MINIMAL.format(hub=hub, pool=pool)))
    return str(path)


def configProblems(tmp_path, hub="", pool=""):
    path = configFile(tmp_path, hub, pool)
    with pytest.raises(ConfigError) as info:
        loadConfig(path)
    return path, str(info.value)


def test_configDefaults(tmp_path):
    """Without the keys: an hour's lease time, no store (leases kept in memory)."""
    config = loadConfig(configFile(tmp_path))
    assert config.leaseDb is None
    assert config.pools["rw"].leaseTime == HOUR
    pools, store = buildPools(config, Clock())
    assert store is None and pools["rw"].leaseTime == HOUR


def test_configLeaseTimeAndRelativeLeaseDb(tmp_path):
    """lease_time is read; lease_db is relative to the configuration file's directory."""
    (tmp_path / "state").mkdir()
    config = loadConfig(
        configFile(tmp_path, hub='lease_db = "state/leases.sqlite"', pool="lease_time = 600")
    )
    assert config.leaseDb == str(tmp_path / "state" / "leases.sqlite")
    assert config.pools["rw"].leaseTime == 600.0
    assert not os.path.exists(config.leaseDb)  # checking creates nothing
    clock = Clock()
    pools, store = buildPools(config, clock)
    assert pools["rw"].leaseTime == 600.0
    pools["rw"].release(pools["rw"].acquire("alice"))
    store.close()
    assert LeaseStore.open(config.leaseDb, clock).rows() == [("192.0.2.1", "alice", 0.0)]


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("lease_time = -1", "-1 is too small; use a number >= 0"),
        ('lease_time = "1h"', "expected a number (like lease_time = 3600)"),
        ("lease_time = inf", "inf is not a finite number; use a number like 3600"),
    ],
)
def test_configBadLeaseTime(tmp_path, line, fragment):
    """A lease time that is not seconds >= 0 names pools.NAME.lease_time."""
    path, message = configProblems(tmp_path, pool=line)
    assert f"{path}: pools.rw.lease_time: {fragment}" in message


def test_configLeaseDbMustBeAString(tmp_path):
    path, message = configProblems(tmp_path, hub="lease_db = 1")
    assert f"{path}: hub.lease_db: expected a string" in message


def test_configCorruptLeaseDb(tmp_path):
    """A lease_db that is not an SQLite file stops the hub, naming the key and the remedy."""
    (tmp_path / "leases.sqlite").write_bytes(b"this is not a database\n" * 10)
    path, message = configProblems(tmp_path, hub='lease_db = "leases.sqlite"')
    assert message.startswith(f"{path}: hub.lease_db: ")
    assert "is not an SQLite database" in message and "move it away" in message


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("missing/leases.sqlite", "does not exist; create it (mkdir -p"),
        (".", "is a directory; give the path of a file"),
        ("afile/leases.sqlite", "is not a directory"),
    ],
)
def test_configUnusableLeaseDbPath(tmp_path, value, fragment):
    """A lease_db the hub cannot create names hub.lease_db and says what to do."""
    (tmp_path / "afile").write_text("")
    path, message = configProblems(tmp_path, hub=f'lease_db = "{value}"')
    assert message.startswith(f"{path}: hub.lease_db: ")
    assert fragment in message
    assert 'or set lease_db = "" to keep leases in memory' in message


def test_leaseDbDamagedAfterCheckIsStillAConfigError(tmp_path):
    """If the file goes bad between the check and the start, opening it is a ConfigError too."""
    config = loadConfig(configFile(tmp_path, hub='lease_db = "leases.sqlite"'))
    (tmp_path / "leases.sqlite").write_bytes(b"\x00garbage" * 512)
    with pytest.raises(ConfigError) as info:
        buildPools(config, Clock())
    assert str(info.value).startswith(f"{config.path}: hub.lease_db: ")
    assert "not an SQLite database" in str(info.value)


def test_openReportsADamagedDatabaseWithAValidHeader(tmp_path):
    """A file with SQLite's header but damaged pages cannot be opened: LeaseStoreError."""
    path = tmp_path / "leases.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080)
    with pytest.raises(LeaseStoreError) as info:
        LeaseStore.open(str(path), Clock())
    assert str(path) in str(info.value)


def test_checkCreatesNothing(tmp_path):
    """checkLeaseDb only looks."""
    checkLeaseDb(str(tmp_path / "leases.sqlite"))
    assert list(tmp_path.iterdir()) == []


def test_serviceClosesTheStoreAtStop(tmp_path):
    """The service builds its pools on the reactor's clock with the store, and closes it."""
    config = loadConfig(configFile(tmp_path, hub='lease_db = "leases.sqlite"'))
    reactor = MemoryReactorClock()
    service = IKEHubService(config, reactor)
    pool = service.pools["rw"]
    assert pool._clock is reactor and pool._store is service.leaseStore
    pool.release(pool.acquire("alice"))
    service.stopService()
    assert service.leaseStore.closed
    rows = LeaseStore.open(config.leaseDb, reactor).rows()
    assert [row[:2] for row in rows] == [("192.0.2.1", "alice")]


def test_serviceExitsWithOneLineForAnUnusableStore(tmp_path):
    """At start, an unusable store is a one-line exit naming hub.lease_db, like [tun]."""
    config = loadConfig(configFile(tmp_path, hub='lease_db = "leases.sqlite"'))
    (tmp_path / "leases.sqlite").write_bytes(b"not sqlite")
    with pytest.raises(SystemExit) as info:
        IKEHubService(config, MemoryReactorClock())
    assert f"{config.path}: hub.lease_db: " in str(info.value.code)


# -- the property: one address, one identity --------------------------------------------------

_acquires = st.tuples(st.just("acquire"), st.sampled_from("abcde"))
operations = st.lists(
    st.one_of(
        _acquires,
        _acquires,
        st.tuples(st.just("release"), st.integers(0, 7)),
        st.tuples(st.just("advance"), st.sampled_from([0, 1, 30, 59, 60, 61, 500])),
        st.tuples(st.just("restart"), st.none()),
    ),
    max_size=60,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations, leaseTime=st.sampled_from([0, 60, HOUR]))
def test_noAddressIsEverLentToTwoIdentities(tmp_path_factory, ops, leaseTime):
    """
    Whatever the order of acquires, releases, clock steps and restarts (a new pool on the same
    file, with the SAs gone as after a hub restart): an address is lent to at most one SA at a
    time, acquire() refuses only when every address is lent, and an identity with a running
    lease gets that address back.
    """
    path = str(tmp_path_factory.mktemp("leases") / "leases.sqlite")
    clock = Clock()
    store = LeaseStore.open(path, clock)
    pool = leasing("192.0.2.1-192.0.2.3", leaseTime=leaseTime, clock=clock, store=store)
    lent: dict = {}  # address -> identity
    for op, arg in ops:
        if op == "acquire":
            expected = pool.leaseOf(arg)
            address = pool.acquire(arg)
            if address is None:
                assert len(lent) == pool.size
                continue
            assert address not in lent
            assert pool.contains(address)
            if expected is not None:
                assert address == expected
            lent[address] = arg
        elif op == "release" and lent:
            address = sorted(lent)[arg % len(lent)]
            assert pool.release(address)
            assert not pool.release(address)
            del lent[address]
        elif op == "advance":
            clock.advance(arg)
        elif op == "restart":
            store.close()
            store = LeaseStore.open(path, clock)
            pool = leasing("192.0.2.1-192.0.2.3", leaseTime=leaseTime, clock=clock, store=store)
            lent.clear()
        assert pool.inUse == len(lent)
    store.close()


def test_exampleConfigurationDocumentsLeases():
    """etc/ikehub.toml sets the pool's lease_time and shows lease_db commented out."""
    from ikehub.config import defaultConfigPath

    config = loadConfig(defaultConfigPath())
    assert config.pools["roadwarriors"].leaseTime == HOUR
    assert config.leaseDb is None
    with open(defaultConfigPath()) as f:
        assert '# lease_db = "/var/lib/ikehub/leases.sqlite"' in f.read()
