"""
Authenticators: how a peer proves who it is.

Each authenticator is chosen by name from the configuration (C{auth = "psk"},
C{"eap-mschapv2"}, ...). The EAP server methods live in L{ikehub.auth.eap}; the local user
database they check passwords against is L{ikehub.auth.users}.
"""
