"""
Where address leases outlive the hub: a small SQLite file (C{[hub] lease_db}).

The pools keep their leases in memory and tell the store about each change; the store only
remembers the latest change per address and writes them all in one transaction a little later
(C{flushInterval} seconds on the injected clock), so a handshake never waits for the disk. The
database runs in WAL mode with C{synchronous=NORMAL}: a commit is an append to the log, and a
power cut loses at most the last commits, never the file. A hub that crashes loses at most the
last C{flushInterval} seconds of changes, which costs a returning peer its old address, nothing
worse.

One row per address that has an owner: C{address} (text), C{identity} (the peer's identity as
text) and C{released} (the clock's seconds when it was given back, NULL while it is lent). The
pools decide what rows mean; the store knows nothing about pools or lease times.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["LeaseRow", "LeaseStore", "LeaseStoreError", "checkLeaseDb"]

#: One stored lease: (address as text, identity as text, released at or None while lent).
LeaseRow = tuple[str, str, float | None]

#: Seconds between a lease change and its write to disk.
DEFAULT_FLUSH_INTERVAL = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    address TEXT PRIMARY KEY NOT NULL,
    identity TEXT NOT NULL,
    released REAL
) WITHOUT ROWID
"""
_HEADER = b"SQLite format 3\x00"


class LeaseStoreError(Exception):
    """
    The lease database cannot be used; the message names the file, why, and what to do (but
    not the configuration key, which the caller adds).
    """


def _problem(path: str) -> str | None:
    """
    What is wrong with C{path} as a lease database, found without creating or changing
    anything; None when nothing is visibly wrong.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "/"
    if os.path.isdir(path):
        return f"{path} is a directory; give the path of a file, like {path}/leases.sqlite"
    if not os.path.exists(directory):
        return f"the directory {directory} does not exist; create it (mkdir -p {directory})"
    if not os.path.isdir(directory):
        return f"{directory} is not a directory; put the lease database in a directory"
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                header = f.read(len(_HEADER))
        except OSError as e:
            return (
                f"cannot read {path}: {e.strerror or e}; make it readable and writable by the "
                "user ikehub runs as"
            )
        if header and header != _HEADER:
            return (
                f"{path} is not an SQLite database (damaged, or another file); move it away "
                "and the hub starts a new one (peers then get new addresses)"
            )
        if not os.access(path, os.R_OK | os.W_OK):
            return f"{path} is not writable; make it writable by the user ikehub runs as"
    # WAL mode keeps two files beside the database: the directory must take new files.
    if not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"cannot create files in {directory}; make it writable by the user ikehub runs as "
            "(the database keeps its -wal and -shm files beside it)"
        )
    return None


def checkLeaseDb(path: str) -> None:
    """
    Check, without creating or changing anything, that a lease database can be opened at
    C{path}: for the configuration (and so C{ikehub check}), so that a wrong path stops the
    hub before it starts.

    @raise LeaseStoreError: naming the problem and what to do.
    """
    problem = _problem(path)
    if problem is not None:
        raise LeaseStoreError(problem)


class LeaseStore:
    """
    An SQLite file of address leases, written in batches.

    Not thread-safe; it lives on the reactor thread like the pools that use it.
    """

    log = Logger()

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: str,
        clock: IReactorTime,
        rows: list[LeaseRow],
        flushInterval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        self._connection: sqlite3.Connection | None = connection
        self.path = path
        self.clock = clock
        self.flushInterval = flushInterval
        self._rows = rows
        # address -> (identity, released) to store, or None to delete; the latest change wins.
        # Keys are ipaddress objects: their text form is made at the flush, off the hot path.
        self._pending: dict[Any, tuple[str, float | None] | None] = {}
        self._call: IDelayedCall | None = None
        self._failing = False
        #: How many transactions and rows were written; for tests and the benchmark.
        self.commits = 0
        self.written = 0

    @classmethod
    def open(
        cls, path: str, clock: IReactorTime, flushInterval: float = DEFAULT_FLUSH_INTERVAL
    ) -> LeaseStore:
        """
        Open (or create) the database at C{path} and read every lease in it.

        @param clock: for the delayed writes.
        @raise LeaseStoreError: naming the file, the problem and what to do.
        """
        checkLeaseDb(path)
        connection = None
        try:
            connection = sqlite3.connect(path, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL").fetchall()
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
            rows = [
                (str(address), str(identity), None if released is None else float(released))
                for address, identity, released in connection.execute(
                    "SELECT address, identity, released FROM leases"
                )
            ]
        except (sqlite3.Error, OSError, TypeError, ValueError) as e:
            if connection is not None:
                connection.close()
            raise LeaseStoreError(
                _problem(path)
                or f"cannot open or create the lease database {path} ({e}); make it and its "
                "directory writable by the user ikehub runs as, or move a damaged file away"
            ) from None
        return cls(connection, path, clock, rows, flushInterval)

    def __repr__(self) -> str:
        return f"<LeaseStore {self.path!r} {len(self._pending)} changes pending>"

    def rows(self) -> list[LeaseRow]:
        """The leases the file held when it was opened."""
        return list(self._rows)

    # -- changes, written later ------------------------------------------------------------

    def record(self, address: Any, identity: str, released: float | None) -> None:
        """
        Remember that C{address} (an C{ipaddress} address; always the same type for one
        address) belongs to C{identity}, lent now or C{released} at.
        """
        self._pending[address] = (identity, released)
        if self._call is None:
            self._schedule()

    def forget(self, address: Any) -> None:
        """Remember that C{address} has no owner any more."""
        self._pending[address] = None
        if self._call is None:
            self._schedule()

    def _schedule(self) -> None:
        if self._connection is not None:
            self._call = self.clock.callLater(self.flushInterval, self._flushLater)

    def _flushLater(self) -> None:
        self._call = None
        self.flush()

    @property
    def pending(self) -> int:
        """How many addresses have changes not yet written."""
        return len(self._pending)

    def flush(self) -> None:
        """
        Write every pending change now, in one transaction. A failure (a full disk) is logged,
        and the changes are kept for the next attempt.
        """
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        if not self._pending or self._connection is None:
            return
        pending, self._pending = self._pending, {}
        upserts = []
        deletes = []
        for address, change in pending.items():
            if change is None:
                deletes.append((str(address),))
            else:
                upserts.append((str(address), change[0], change[1]))
        connection = self._connection
        try:
            connection.execute("BEGIN")
            try:
                if upserts:
                    connection.executemany(
                        "INSERT OR REPLACE INTO leases (address, identity, released) "
                        "VALUES (?, ?, ?)",
                        upserts,
                    )
                if deletes:
                    connection.executemany("DELETE FROM leases WHERE address = ?", deletes)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            # Newer changes made meanwhile win over the ones that failed.
            pending.update(self._pending)
            self._pending = pending
            if not self._failing:
                self._failing = True
                self.log.error(
                    "cannot write {count} lease changes to {path}: {error}; retrying every "
                    "{interval} s (leases are kept in memory meanwhile)",
                    count=len(pending),
                    path=self.path,
                    error=str(e),
                    interval=self.flushInterval,
                )
            self._schedule()
            return
        if self._failing:
            self._failing = False
            self.log.info("lease changes are written to {path} again", path=self.path)
        self.commits += 1
        self.written += len(pending)

    def close(self) -> None:
        """Write what is pending and close the file; later changes are dropped."""
        self.flush()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def closed(self) -> bool:
        return self._connection is None
