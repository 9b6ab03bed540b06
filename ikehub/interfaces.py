"""
The interfaces that connect ikehub's layers.

The IKE SA machine (C{ikehub.ike}) sits below policy and the ESP datapath in the import graph, so it
reaches them only through these interfaces: the PAD tells it who a peer is allowed to be, the
address pools lend virtual IPs, and the SAD receives the CHILD SAs it negotiates.
"""

from zope.interface import Attribute, Interface


class IAddressPool(Interface):
    """
    A pool of virtual IP addresses lent to peers through the configuration payload (CP).
    """

    name = Attribute("The pool's configured name, for logs.")
    first = Attribute("The pool's first address; its C{version} is the pool's family.")
    dns = Attribute("Tuple of DNS server addresses handed out with every lease.")

    def acquire(identity):
        """
        Lend an address to C{identity} (its string form).

        @return: an C{ipaddress} address, or L{None} when the pool is exhausted.
        """

    def release(address):
        """
        Give a lent address back to the pool.
        """


class IPADEntry(Interface):
    """
    What the Peer Authorization Database (RFC 4301 section 4.4.3) allows one authenticated peer.
    """

    name = Attribute("The entry's name, for logs and decision records.")
    auth = Attribute("Name of the authenticator this peer must use, e.g. 'psk'.")
    psk = Attribute("The pre-shared key as bytes, or None; never logged.")
    pool = Attribute("The first of C{pools}, or None.")
    pools = Attribute(
        "Tuple of IAddressPool to lend virtual IPs from, in order; a client gets one address "
        "per family it asks for."
    )
    poolsByFamily = Attribute("C{pools} as a dict from IP version (4, 6) to a tuple, in order.")
    dnsDomains = Attribute(
        "Tuple of domain names (RFC 8598 split DNS) the pools' DNS servers resolve."
    )
    localTs = Attribute("Tuple of ip_network: what the hub offers behind it.")
    remoteTs = Attribute(
        "Tuple of ip_network or the string 'dynamic' (the peer's virtual IP or IKE address): "
        "what the peer may use as its own side of a CHILD SA."
    )


class IPeerAuthorizationDatabase(Interface):
    """
    The PAD as the IKE SA machine sees it.
    """

    def lookup(identity, peerAddress):
        """
        Find the entry that governs C{identity} connecting from C{peerAddress}.

        @param identity: the peer's claimed L{ikehub.wire.identity.Identity} (from IDi).
        @param peerAddress: the peer's IP address as a string.
        @return: an object with C{entry} (an L{IPADEntry}, or L{None} when refused) and
            C{reason} (a sentence saying which entry matched or why none did).
        """


class ISecurityAssociationDatabase(Interface):
    """
    The SAD (RFC 4301 section 4.4.2) as the IKE SA machine sees it: where CHILD SAs are installed
    once negotiated and removed when deleted.
    """

    def allocateSpi():
        """
        Reserve and return a fresh inbound ESP SPI (4 bytes) that is neither in use nor reserved.
        """

    def releaseSpi(spi):
        """
        Give back a reserved SPI whose CHILD SA was never installed.
        """

    def install(childSa, outbound=True):
        """
        Make a negotiated L{ikehub.ike.child.ChildSA} carry traffic: inbound at once, and
        outbound too unless C{outbound} is false.
        """

    def activateOutbound(childSa):
        """
        Let an installed CHILD SA carry outbound traffic from now on, ahead of any older CHILD SA
        with the same selectors (the switch of a rekey).
        """

    def remove(childSa):
        """
        Stop using a CHILD SA and forget its keys; removing an unknown SA is harmless.
        """


class IPacketInterface(Interface):
    """
    The inner-packet side of the hub: where decrypted packets leave for the LAN and where packets
    bound for peers come from.  A TUN device in production, a memory sink in tests.
    """

    name = Attribute("The interface name, for logs (e.g. 'ikehub0').")
    mtu = Attribute("The largest inner packet, in bytes, the interface accepts and delivers.")

    def writePacket(packet):
        """
        Deliver one IPv4 or IPv6 packet (bytes, no link header or packet information).

        Never raises: a packet the interface cannot take is counted and dropped.
        """

    def setReceiver(receiver):
        """
        Set who gets each packet read from the interface: C{receiver(packet)} is called with the
        packet's bytes, once per packet, while reading.
        """

    def startReading():
        """
        Begin delivering packets to the receiver.
        """

    def stopReading():
        """
        Stop delivering packets; they wait (or are dropped by the kernel) until reading resumes.
        """


# -- authenticators and EAP methods (plugins) ------------------------------------------------
#
# Built-ins live in ikehub/plugins/; a third party drops one module into any ikehub/plugins/
# directory on sys.path. Discovery is twisted.plugin.getPlugins(IAuthenticatorPlugin or
# IEAPMethodPlugin, ikehub.plugins). A plugin object is cheap and stateless; its build() runs once
# at start with a PluginContext and returns the live authenticator or EAP method. build() raises
# ikehub.auth.plugin.PluginConfigError (naming the key and what to do) for a bad configuration.
#
# Results may be plain values or Deferreds firing with them: a RADIUS relay or a PSK looked up in
# a database answers later, a local method at once. The IKE machine accepts both.


class IAuthenticatorPlugin(Interface):
    """
    A way for a peer to prove its identity with an AUTH payload (RFC 7296 section 2.15): a
    pre-shared key, a signature with a certificate, or anything a third party adds.
    """

    name = Attribute("The name peers choose it by in the configuration: auth = NAME.")

    def build(context):
        """
        Make the authenticator for this hub.

        @param context: an L{ikehub.auth.plugin.PluginContext} (options, trust store, the hub's
            credentials, users, clock).
        @return: an L{IAuthenticator}.
        """


class IAuthenticator(Interface):
    """
    A built authenticator: checks one peer's AUTH payload.
    """

    name = Attribute("The configuration name, as its plugin's.")

    def authenticate(attempt):
        """
        Decide whether C{attempt} (an L{ikehub.auth.plugin.AuthAttempt}: identity, PAD entry,
        AUTH method and data, certificates, and helpers that verify a PSK MAC or a signature)
        proves the claimed identity.

        @return: an L{ikehub.auth.plugin.AuthResult} or a Deferred firing with one. It must not
            raise for anything a peer sends; a refusal carries a reason for the PAD's decision
            record (never a secret).
        """


class IEAPMethodPlugin(Interface):
    """
    An EAP server method (RFC 3748) the hub can run inside IKE_AUTH (RFC 7296 section 2.16).
    """

    name = Attribute("The configuration name, e.g. 'eap-mschapv2'.")
    mutual = Attribute(
        "True when the method authenticates the server too and yields an MSK, so it may be "
        "used without the hub's certificate AUTH (EAP-only authentication, RFC 5998)."
    )

    def build(context):
        """
        Make the method for this hub.

        @param context: an L{ikehub.auth.plugin.PluginContext}.
        @return: an L{IEAPMethod}.
        """


class IEAPMethod(Interface):
    """
    A built EAP method: starts one conversation per IKE SA.
    """

    name = Attribute("The configuration name, as its plugin's.")

    def newSession(peerIdentity, identityRound):
        """
        Start the authenticator side of one peer's EAP conversation.

        @param peerIdentity: the initiator's IDi as text.
        @param identityRound: whether to begin with an EAP Identity Request.
        @return: an L{IEAPSession}.
        """


class IEAPSession(Interface):
    """
    One peer's EAP conversation, driven by the IKE_AUTH rounds.

    Outcomes are L{ikehub.auth.eap.conversation.Continue} (send C{message} to the peer),
    C{Succeeded} (send C{message}, the EAP-Success; C{msk} keys the final AUTH payloads) or
    C{Failed} (send C{message}, the EAP-Failure).
    """

    def start():
        """
        @return: the first outcome (a Continue with the first Request), or a Deferred of it.
        """

    def receive(data):
        """
        The peer's next EAP message (bytes).

        @return: the outcome, or a Deferred of it. Never raises for any bytes.
        """
