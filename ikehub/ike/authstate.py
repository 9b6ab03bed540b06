"""
What a responder remembers about one peer's authentication between IKE_AUTH rounds.

Most peers (a PSK or a signature) authenticate in one IKE_AUTH exchange and need none of this
beyond the hashes they announced. EAP takes several rounds (RFC 7296 section 2.16): the
first request's SA, TS and CP payloads are answered only in the last response, the EAP
session lives between rounds, and its MSK keys the final AUTH payloads. An authenticator that
answers later (a RADIUS server, a database) makes the SA busy meanwhile: requests that arrive
then are dropped, and the answer goes out when the verdict comes.
"""

from __future__ import annotations

from typing import Any


class AuthState:
    __slots__ = (
        "peerHashes",
        "busy",
        "decision",
        "entry",
        "idiBody",
        "request",
        "session",
        "eapOnly",
        "eapDone",
        "msk",
        "eapIdentity",
        "groups",
        "address",
        "secondRound",
    )

    def __init__(self) -> None:
        #: The RFC 7427 hashes the peer announced in IKE_SA_INIT, or None.
        self.peerHashes: tuple[int, ...] | None = None
        #: An authenticator or EAP step is under way; the SA answers nothing until it ends.
        self.busy = False
        self.decision: Any = None
        self.entry: Any = None
        #: The body of the peer's IDi: the final AUTH after EAP covers it again.
        self.idiBody = b""
        #: The first IKE_AUTH request's singular payloads by type (responder.indexed): its
        #: SA, TSi, TSr and CP are answered in the last response.
        self.request: dict = {}
        #: The IEAPSession while EAP runs.
        self.session: Any = None
        #: EAP-only authentication (RFC 5998): the hub sends no certificate AUTH.
        self.eapOnly = False
        #: The EAP method succeeded; the next request must carry the final AUTH.
        self.eapDone = False
        self.msk: bytes | None = None
        self.eapIdentity: str | None = None
        self.groups: tuple[str, ...] = ()
        #: A virtual IP the authenticator assigned (RADIUS Framed-IP-Address), or None.
        self.address: str | None = None
        #: RFC 4739: the first round succeeded and the peer's EAP round comes next.
        self.secondRound = False
