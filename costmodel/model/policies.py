"""Drain policies as data: what the WP fault does with a small, non-exclusive folio.

A policy is a few choices. Adding one is one entry in :data:`POLICIES`; every output, chart and
command picks it up from there.

The references a small folio can carry at the WP fault: this mapping's (1), the add batch's while a
batch holds it (b), the swap cache's (c, ``p_swapcache``) and others (o: none, one or more:
``p_other_ref``, ``p_more_refs``). The kernel since 5.18 (``wp_can_reuse_anon_folio()``, read in
Linux 6.12 and 7.2 mm/memory.c, unchanged): refcount 1+o+b+c > 3 copies at once without a drain
(``early_copy``); a folio not on an LRU (b) gets ``lru_add_drain()``; then refcount > 1 + c copies;
a reuse of a swap-cache folio frees its swap entry, unless another process still holds that
entry (``p_swap_shared``: not in the refcount, so the test and any drain run as without it; then
``folio_free_swap()`` fails and the fault copies, in every policy). Before (5.9 - 5.16) the test was
refcount != 1, so the swap cache's reference forced a copy (``swapcache`` = ``copies``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: local_drain choices: never; when the folio is not on an LRU (in some batch); always; only when the
#: folio sits in this CPU's batch; take just this folio out of this CPU's batch (no drain)
NEVER, IF_NOT_ON_LRU, ALWAYS, IF_IN_LOCAL_BATCH, REMOVE_FOLIO = (
    "never", "if_not_on_lru", "always", "if_in_local_batch", "remove_folio")
#: what to do if the folio is still held by another CPU's batch after the local step: copy; queue
#: the drain on that CPU and wait; lru_add_drain_all(); take that CPU's batch lock and drain it here
COPY, DRAIN_REMOTE, DRAIN_ALL, DRAIN_REMOTE_LOCK = "copy", "drain_remote", "drain_all", "drain_remote_lock"
#: how the refcount test treats the swap cache's reference
SWAPCACHE_ALLOWED, SWAPCACHE_COPIES = "allowed", "copies"

BARRY_SONG_RFC = ("Barry Song, '[RFC PATCH 0/3] mm: drop redundant lru_add_drain in anon folio reuse paths',"
                  " 2026-06-11, v2 2026-06-26")
SHAKEEL_BUTT = "Shakeel Butt, review of that RFC, 2026-06 (lru_add_drain_folio())"
PW_LOCKS = "Marcelo Tosatti / Leonardo Bras, 'QPW' / 'PW locks' v4, 2026-05-18"
PROPOSED = "2026 proposal"


@dataclass(frozen=True)
class Policy:
    name: str
    #: False: decide by map count, so a transient reference never forces a copy
    refcount_test: bool
    #: when to call lru_add_drain() on the faulting CPU (or take the folio out of its batch)
    local_drain: str
    #: what to do when the folio is still in some other CPU's batch
    still_held: str
    summary: str
    kernels: str = "hypothetical"
    #: the RFC's condition: drain (any step) only when the refcount is exactly 2 + swapcache, i.e.
    #: the batch's reference would be the only one unexplained
    only_if_sole_ref: bool = False
    #: refcount > 3 copies at once, before any drain (the kernel's early check since 5.18)
    early_copy: bool = True
    #: the swap cache's reference: allowed for by the test (a reuse frees the entry), or forcing a copy
    swapcache: str = SWAPCACHE_ALLOWED
    #: where the proposal comes from (empty for the kernel's own and the hypothetical ones)
    source: str = ""

    def __post_init__(self):
        assert self.local_drain in (NEVER, IF_NOT_ON_LRU, ALWAYS, IF_IN_LOCAL_BATCH, REMOVE_FOLIO), self.local_drain
        assert self.still_held in (COPY, DRAIN_REMOTE, DRAIN_ALL, DRAIN_REMOTE_LOCK), self.still_held
        assert self.swapcache in (SWAPCACHE_ALLOWED, SWAPCACHE_COPIES), self.swapcache

    @property
    def proposed(self) -> bool:
        return bool(self.source)


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in [
        Policy("mapcount", False, NEVER, COPY,
               "reuse unless really shared: no unnecessary copy (the reference point)", "<= 5.8"),
        Policy("copy_if_referenced", True, NEVER, COPY,
               "copy whenever the refcount is above 1 (the swap cache's reference included)", "5.9 - 5.17",
               swapcache=SWAPCACHE_COPIES),
        Policy("drain_local", True, IF_NOT_ON_LRU, COPY,
               "if the folio is not on an LRU, drain the local batch, then test the refcount", ">= 5.18"),
        Policy("drain_local_always", True, ALWAYS, COPY,
               "always drain the local batch first, then test the refcount"),
        Policy("drain_remote", True, IF_NOT_ON_LRU, DRAIN_REMOTE,
               "as drain_local; if another CPU's batch still holds it, drain that CPU, then test"),
        Policy("drain_all", True, IF_NOT_ON_LRU, DRAIN_ALL,
               "as drain_local; if still held, lru_add_drain_all(), then test"),
        # ---- the 2026 proposals ----
        Policy("drain_local_sole_ref", True, IF_NOT_ON_LRU, COPY,
               "as drain_local, but drain only when the refcount is 2 + swapcache (the batch's reference"
               " would be the only one unexplained)", PROPOSED, only_if_sole_ref=True, source=BARRY_SONG_RFC),
        Policy("drain_local_if_here", True, IF_IN_LOCAL_BATCH, COPY,
               "drain the local batch only if the folio sits in it, then test", PROPOSED, source=SHAKEEL_BUTT),
        Policy("remove_folio_local", True, REMOVE_FOLIO, COPY,
               "if the folio sits in the local batch, take just it out (onto the LRU), then test",
               PROPOSED, source=SHAKEEL_BUTT),
        Policy("drain_remote_lock", True, IF_NOT_ON_LRU, DRAIN_REMOTE_LOCK,
               "as drain_local; if another CPU's batch still holds it, take that batch's lock and drain it"
               " here (no queued work, whatever that CPU does), then test", PROPOSED, source=PW_LOCKS),
        Policy("drain_here_sole_ref", True, IF_IN_LOCAL_BATCH, COPY,
               "the RFC and the folio's own batch together: drain the local batch only if the folio sits"
               " in it and nothing else references it (never a useless drain)", PROPOSED,
               only_if_sole_ref=True, source=f"{BARRY_SONG_RFC}; {SHAKEEL_BUTT}"),
        Policy("drain_holder_sole_ref", True, IF_IN_LOCAL_BATCH, DRAIN_REMOTE_LOCK,
               "all three: drain the batch that holds the folio (this CPU's, or another's by its lock)"
               " only when nothing else references it", PROPOSED,
               only_if_sole_ref=True, source=f"{BARRY_SONG_RFC}; {SHAKEEL_BUTT}; {PW_LOCKS}"),
    ]
}


#: the policies a kernel could adopt today; ``mapcount`` (<= 5.8) reopens the GUP hole that the
#: refcount test closed, so it is the reference floor, not a candidate
CANDIDATES: tuple[str, ...] = tuple(name for name, p in POLICIES.items() if p.refcount_test)
#: the 2026 proposals, in declaration order
PROPOSALS: tuple[str, ...] = tuple(name for name, p in POLICIES.items() if p.proposed)
