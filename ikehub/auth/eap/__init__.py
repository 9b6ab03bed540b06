"""
EAP (RFC 3748) on the authenticator side, without IKE and without I/O.

L{packet} is the codec, L{conversation} drives one peer's EAP exchange (identity round,
method, final EAP-Success or EAP-Failure), and L{md5} and L{mschapv2} are server methods.
The IKE layer moves the bytes in EAP payloads over IKE_AUTH rounds (RFC 7296 section 2.16)
and keys the final AUTH payloads with the MSK that a successful method yields.
"""
