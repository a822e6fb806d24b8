"""Tenants as a scope: every read and write of the library names the tenant it acts for.

An API key maps to a `Scope` (tenant + role); the CLI's scope is ``--tenant`` (or
``ingest.tenant``) with every right. Nothing a caller sends can widen a scope: the
tenant condition is added to every store filter last, and catalog reads are keyed
by tenant, so a foreign id is simply not found.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

TENANT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class Role(enum.StrEnum):
    """What a key may do; each role includes the ones before it."""

    READ = "read"  # search, ask, view documents, images and jobs
    WRITE = "write"  # also upload and delete documents
    ADMIN = "admin"  # also metrics (every tenant's figures)

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is asking: the tenant whose data they see, and their role."""

    tenant: str
    role: Role = Role.ADMIN
