"""
Transforms, key exchange, key derivation and the SK payload, all through C{cryptography}.

The IKE layer needs only the names re-exported here; the submodules say why each piece
looks the way it does.
"""

from ikehub.crypto.errors import (
    CryptoError,
    DecryptError,
    IntegrityError,
    InvalidKeyExchange,
    ProposalSyntaxError,
    UnsupportedTransform,
)
from ikehub.crypto.ke import (
    KE_PUBLIC_LENGTH,
    SUPPORTED_KE_GROUPS,
    KeyExchange,
    keyExchangeFromPrivate,
    newKeyExchange,
)
from ikehub.crypto.keys import (
    ChildKeys,
    IkeKeys,
    deriveChildKeys,
    deriveIkeKeys,
    deriveIkeKeysFromSkeyseed,
    deriveRekeyedSkeyseed,
    prfPlus,
    skeyseed,
)
from ikehub.crypto.proposals import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    ChildSuite,
    IkeSuite,
    ProposalSpec,
    checkChosenProposal,
    parseProposal,
    selectChildProposal,
    selectIkeProposal,
    suiteFromProposal,
)
from ikehub.crypto.sk import SKCodec, ikeSkCodecs
from ikehub.crypto.transforms import (
    AeadCipher,
    CbcCipher,
    EncrAlgorithm,
    IntegAlgorithm,
    PrfAlgorithm,
    encrAlgorithm,
    integAlgorithm,
    prfAlgorithm,
)

__all__ = [
    "DEFAULT_ESP_PROPOSALS",
    "DEFAULT_IKE_PROPOSALS",
    "KE_PUBLIC_LENGTH",
    "SUPPORTED_KE_GROUPS",
    "AeadCipher",
    "CbcCipher",
    "ChildKeys",
    "ChildSuite",
    "CryptoError",
    "DecryptError",
    "EncrAlgorithm",
    "IkeKeys",
    "IkeSuite",
    "IntegAlgorithm",
    "IntegrityError",
    "InvalidKeyExchange",
    "KeyExchange",
    "PrfAlgorithm",
    "ProposalSpec",
    "ProposalSyntaxError",
    "SKCodec",
    "UnsupportedTransform",
    "checkChosenProposal",
    "deriveChildKeys",
    "deriveIkeKeys",
    "deriveIkeKeysFromSkeyseed",
    "deriveRekeyedSkeyseed",
    "encrAlgorithm",
    "ikeSkCodecs",
    "integAlgorithm",
    "keyExchangeFromPrivate",
    "newKeyExchange",
    "parseProposal",
    "prfAlgorithm",
    "prfPlus",
    "selectChildProposal",
    "selectIkeProposal",
    "skeyseed",
    "suiteFromProposal",
]
