"""Authentication: SASL mechanisms (:mod:`mailcore.auth.sasl`) and accounts."""

from __future__ import annotations

from mailcore.auth.sasl import (
    CLIENT_MECHANISMS,
    SERVER_MECHANISMS,
    Challenge,
    CheckPassword,
    ClientMechanism,
    CredentialSource,
    Failure,
    NeedCramSecret,
    NeedScramSecrets,
    SASLStep,
    ServerMechanism,
    Success,
    client_mechanism,
    scram_secrets_for,
    server_mechanism,
)

__all__ = [
    "CLIENT_MECHANISMS",
    "SERVER_MECHANISMS",
    "Challenge",
    "CheckPassword",
    "ClientMechanism",
    "CredentialSource",
    "Failure",
    "NeedCramSecret",
    "NeedScramSecrets",
    "SASLStep",
    "ServerMechanism",
    "Success",
    "client_mechanism",
    "scram_secrets_for",
    "server_mechanism",
]
