"""Drain policies as data: what the WP fault does with a small, non-exclusive folio.

A policy is three choices. Adding one is one entry in :data:`POLICIES`; every output, chart and
command picks it up from there.
"""

from __future__ import annotations

from dataclasses import dataclass

#: local_drain choices
NEVER, IF_NOT_ON_LRU, ALWAYS = "never", "if_not_on_lru", "always"
#: what to do if the folio is still held by another CPU's batch after the local step
COPY, DRAIN_REMOTE, DRAIN_ALL = "copy", "drain_remote", "drain_all"


@dataclass(frozen=True)
class Policy:
    name: str
    #: False: decide by map count, so a transient reference never forces a copy
    refcount_test: bool
    #: when to call lru_add_drain() on the faulting CPU
    local_drain: str
    #: what to do when the folio is still in some other CPU's batch
    still_held: str
    summary: str
    kernels: str = "hypothetical"

    def __post_init__(self):
        assert self.local_drain in (NEVER, IF_NOT_ON_LRU, ALWAYS), self.local_drain
        assert self.still_held in (COPY, DRAIN_REMOTE, DRAIN_ALL), self.still_held


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in [
        Policy("mapcount", False, NEVER, COPY,
               "reuse unless really shared: no unnecessary copy (the reference point)", "<= 5.8"),
        Policy("copy_if_referenced", True, NEVER, COPY,
               "copy whenever the refcount is above 1", "5.9 - 5.17"),
        Policy("drain_local", True, IF_NOT_ON_LRU, COPY,
               "if the folio is not on an LRU, drain the local batch, then test the refcount", ">= 5.18"),
        Policy("drain_local_always", True, ALWAYS, COPY,
               "always drain the local batch first, then test the refcount"),
        Policy("drain_remote", True, IF_NOT_ON_LRU, DRAIN_REMOTE,
               "as drain_local; if another CPU's batch still holds it, drain that CPU, then test"),
        Policy("drain_all", True, IF_NOT_ON_LRU, DRAIN_ALL,
               "as drain_local; if still held, lru_add_drain_all(), then test"),
    ]
}


#: the policies a kernel could adopt today; ``mapcount`` (<= 5.8) reopens the GUP hole that the
#: refcount test closed, so it is the reference floor, not a candidate
CANDIDATES: tuple[str, ...] = tuple(name for name, p in POLICIES.items() if p.refcount_test)
