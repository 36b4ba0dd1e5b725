"""Answer a SASL mechanism's requests for stored credentials, for the asyncio servers.

The step machines in :mod:`mailcore.auth.sasl` never touch the account
database: they yield :class:`~mailcore.auth.sasl.CheckPassword`,
:class:`~mailcore.auth.sasl.NeedScramSecrets` or
:class:`~mailcore.auth.sasl.NeedCramSecret` and wait for the answer. The
POP3 and IMAP servers both fetch that answer from a
:class:`~mailcore.auth.sasl.CredentialSource` the same way, here.
"""

from __future__ import annotations

from mailcore.auth.sasl import (
    CheckPassword,
    CredentialSource,
    NeedCramSecret,
    NeedScramSecrets,
    SASLStep,
    ServerMechanism,
)

__all__ = ["answer_lookups"]


async def answer_lookups(
    mech: ServerMechanism, step: SASLStep, creds: CredentialSource
) -> tuple[SASLStep, str | None]:
    """Feed ``mech`` what it asks of ``creds`` until it yields a challenge, success or failure.

    Returns that step and the name the client tried to log in as (None if
    the mechanism never named one), which login throttling needs.
    """
    attempted: str | None = None
    while True:
        if isinstance(step, CheckPassword):
            attempted = step.authcid
            step = mech.password_result(await creds.verify_password(step.authcid, step.password))
        elif isinstance(step, NeedScramSecrets):
            attempted = step.authcid
            step = mech.provide_secrets(await creds.scram_secrets(step.authcid))
        elif isinstance(step, NeedCramSecret):
            attempted = step.username
            step = mech.provide_secret(await creds.cram_secret(step.username))
        else:
            return step, attempted
