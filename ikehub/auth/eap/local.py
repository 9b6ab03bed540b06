"""
EAP methods that run inside the hub (MD5, MSCHAPv2, TLS, third-party ones) as the IKE layer
sees them: an L{IEAPMethod} whose sessions are L{EAPConversation}s.

A plugin for a local method only has to say how to make the per-peer L{EAPServerMethod}; the
conversation rules (identifiers, Naks, round limits, the final Success or Failure) are the
same for all of them and live in L{ikehub.auth.eap.conversation}.
"""

from __future__ import annotations

from zope.interface import implementer

from ikehub.auth.eap.conversation import Continue, EAPConversation, MethodFactory, Outcome
from ikehub.auth.eap.packet import EAPPacket
from ikehub.interfaces import IEAPMethod, IEAPSession

__all__ = ["LocalEAPMethod", "LocalEAPSession"]


@implementer(IEAPSession)
class LocalEAPSession:
    """An L{EAPConversation} behind the L{IEAPSession} interface; answers synchronously."""

    __slots__ = ("conversation",)

    def __init__(self, conversation: EAPConversation) -> None:
        self.conversation = conversation

    def start(self) -> Outcome:
        return Continue(EAPPacket.fromBytes(self.conversation.start()))

    def receive(self, data: bytes) -> Outcome:
        return self.conversation.receive(data)


@implementer(IEAPMethod)
class LocalEAPMethod:
    """
    A local EAP method: C{methodFactory(identity)} makes the per-peer server method.
    """

    def __init__(self, name: str, methodFactory: MethodFactory) -> None:
        self.name = name
        self.methodFactory = methodFactory

    def newSession(self, peerIdentity: str, identityRound: bool) -> LocalEAPSession:
        return LocalEAPSession(
            EAPConversation(self.methodFactory, identityRound, peerIdentity or None)
        )
