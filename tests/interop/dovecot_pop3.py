"""Dovecot's pop3d for the interop tests: the harness lives in :mod:`mailcore.bench.dovecot`.

It moved into the package so ``mailcore bench pop3`` can start Dovecot too.
"""

from mailcore.bench.dovecot import DOVECOT, PASSWORD, USER, Dovecot, free_port

__all__ = ["DOVECOT", "PASSWORD", "USER", "Dovecot", "free_port"]
