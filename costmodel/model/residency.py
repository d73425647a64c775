"""Residency: the probability that the page is still held in its CPU's LRU add batch when the
write-protect fault comes, and the expected occupancy of that batch.

Notation: B batch size; J folios already in the batch when the page was
added, so the batch is moved to the LRU after n = B-1-J further adds (the add that fills it);
small-folio adds arrive at rate lambda, local drains at mu and drain-all events at nu, all Poisson;
a large-folio add (a share p_large_add of all adds) moves the batch to the LRU at once. Any of these
(rate delta = mu + nu + lambda_all p_large_add) empties the batch.

Stationary position: J is the batch fill seen by an arriving add, P(J = j) proportional to
p^j with p = lambda / (lambda + delta), j = 0..B-1 (uniform when delta = 0).

Given n, the page is resident at the WP fault if fewer than n adds and no drain happened in
the gap. The three gap models give:

- fixed_count k:      r(n) = [k < n] p^k         (no drain before the k-th add: a race)
- fixed_time t:       r(n) = e^(-delta t) Q(n, lambda t)
- exponential_time:   r(n) = (1 - a^n) / (1 + delta t),  a = lambda t / (1 + lambda t + delta t)
  (the WP fault, an add and a drain race; summing the geometric series of adds before the WP)

Mixing over the stationary position gives closed forms for fixed_count and exponential_time;
fixed_time stays a finite sum over the position (evaluated vectorised by ``evaluate``).
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ..registry import S
from .special import Clamp, PoissonBelow

B = S["batch_size"]
#: small-folio adds fill the batch; a large-folio add moves the whole batch to the LRU at once
#: (it may not be cached there), so it acts as a drain
LAM_ALL = S["batch_adds_per_s"]
Q_LARGE = S["p_large_add"]
LAM = LAM_ALL * (1 - Q_LARGE)
MU = S["explicit_drains_per_s"]
NU = S["drain_all_per_s"]
K = S["adds_between"]
T = S["wp_gap_s"]
J_FIXED = S["batch_position"]

#: summation index over positions in the batch
j = sp.Symbol("j", integer=True, nonnegative=True)


def drain_rate() -> sp.Expr:
    """delta: rate of events that empty the batch: local drains, drain-all, and large-folio adds."""
    return MU + NU + LAM_ALL * Q_LARGE


def add_share() -> sp.Expr:
    """p = lambda/(lambda+delta): the chance the next batch event is an add, not a drain."""
    d = drain_rate()
    return sp.Piecewise((sp.S.One, sp.Eq(d, 0)), (LAM / (LAM + d), True))


def _share_when_draining() -> sp.Expr:
    """p = lambda/(lambda+delta) inside branches where delta > 0 is already known."""
    return LAM / (LAM + drain_rate())


def _drain_share() -> sp.Expr:
    """1 - p = delta/(lambda+delta), computed without cancellation."""
    return drain_rate() / (LAM + drain_rate())


#: below this B (1 - p) the stationary law is uniform to far better than double precision, and the
#: general form would be computed from subnormal numbers that have lost their digits
_UNIFORM_BELOW = sp.Float(1e-280)


def _no_drains() -> sp.Boolean:
    """delta = 0, or so small beside lambda that B (1 - p) is negligible: the position is uniform."""
    return sp.Or(sp.Eq(drain_rate(), 0), B * _drain_share() < _UNIFORM_BELOW)


def _one_minus_p_pow(m: sp.Expr) -> sp.Expr:
    """1 - p^m, accurate also when p is within rounding of 1 (delta << lambda)."""
    return -expm1(m * log1p(-_drain_share()))


def position_weight(jj: sp.Expr = j) -> sp.Expr:
    """Stationary P(J = j)."""
    p = _share_when_draining()
    return sp.Piecewise((1 / B, _no_drains()), (p**jj * _drain_share() / _one_minus_p_pow(B), True))


def position_below(m: sp.Expr) -> sp.Expr:
    """Stationary P(J < m) for 0 <= m <= B."""
    return sp.Piecewise((m / B, _no_drains()), (sp.S.Zero, sp.Eq(m, 0)),
                        (_one_minus_p_pow(m) / _one_minus_p_pow(B), True))


#: below this B*(1-p) the occupancy is the uniform (B-1)/2 to better than 1e-4 folios, and the
#: general form would lose everything to cancellation
_OCCUPANCY_UNIFORM_BELOW = sp.Float(1e-6)


def expected_occupancy() -> sp.Expr:
    """Stationary mean number of folios in a CPU's add batch: what a local drain has to move."""
    p, eps = _share_when_draining(), _drain_share()
    general = p / eps - B * p**B / _one_minus_p_pow(B)
    # Clamp: the general form may round a true 0 (B = 1) to a tiny negative number
    return sp.Piecewise((sp.S.Zero, sp.Eq(LAM, 0)),  # every add is a large folio: the batch stays empty
                        ((B - 1) / sp.S(2), B * drain_rate() <= _OCCUPANCY_UNIFORM_BELOW * (LAM + drain_rate())),
                        (Clamp(general, 0, B), True))


# ---- residency given n further adds to flush --------------------------------------------


def residency_given_adds_to_flush(gap_model: str, n: sp.Expr) -> sp.Expr:
    """r(n): resident at the WP fault given that n more adds would flush the batch."""
    d = drain_rate()
    if gap_model == "fixed_count":
        return sp.Piecewise((add_share() ** K, K < n), (sp.S.Zero, True))
    if gap_model == "fixed_time":
        return sp.exp(-d * T) * PoissonBelow(n, LAM * T)
    if gap_model == "exponential_time":
        a = exp_gap_add_ratio()
        return (1 - a**n) / (1 + d * T)
    raise ValueError(f"unknown gap_model {gap_model!r}")


def exp_gap_add_ratio() -> sp.Expr:
    """a = P(an add comes before the WP fault and before a drain), exponential gap of mean t."""
    return LAM * T / (1 + LAM * T + drain_rate() * T)


def residency(gap_model: str, position_model: str) -> sp.Expr:
    """P(page still held in its batch at the WP fault), kept inside [0, 1]: the closed forms are
    exact, but in floating point a true 0 (B = 1, or a gap of many batches) can come out as
    -4e-11, which a 10^10 ns drain-all cost would turn into a visible negative cost."""
    return Clamp(_residency(gap_model, position_model), 0, 1)


def _residency(gap_model: str, position_model: str) -> sp.Expr:
    if position_model == "fixed":
        return residency_given_adds_to_flush(gap_model, B - 1 - J_FIXED)
    if position_model != "stationary":
        raise ValueError(f"unknown position_model {position_model!r}")
    d = drain_rate()
    if gap_model == "fixed_count":
        # resident iff J < B-1-k and no drain before the k-th add
        return add_share() ** K * position_below(sp.Max(B - 1 - K, 0))
    if gap_model == "exponential_time":
        p = _share_when_draining()
        # E[a^(B-1-J)] = sum_j pi_j a^(B-1-j), a geometric sum over the stationary law of J:
        # uniform: (1 - a^B) / (B (1 - a)); else (1-p)/(1-p^B) p^(B-1) (1 - q^B)/(1 - q) with
        # q = a/p. Written so that no difference of numbers near 1 is divided by a small one
        # (lambda t >> 1 puts a and p near 1) and nothing underflows to 0/0 (lambda or t tiny):
        # 1 - a and 1 - q are formed directly, 1 - x^B by expm1/log1p.
        def geometric(one_minus_x):  # (1 - x^B) / (1 - x), for x = 1 - one_minus_x in [0, 1)
            return -expm1(B * log1p(-one_minus_x)) / one_minus_x

        uniform = geometric((1 + d * T) / (1 + LAM * T + d * T)) / B
        general = _drain_share() / _one_minus_p_pow(B) * p ** (B - 1) * geometric(1 / (1 + LAM * T + d * T))
        mean_a_pow = sp.Piecewise((uniform, _no_drains()), (general, True))
        return (1 - mean_a_pow) / (1 + d * T)
    if gap_model == "fixed_time":
        return sp.Sum(position_weight(j) * residency_given_adds_to_flush("fixed_time", B - 1 - j), (j, 0, B - 1))
    raise ValueError(f"unknown gap_model {gap_model!r}")


def adds_in_gap_while_held(gap_model: str, n: sp.Expr) -> sp.Expr:
    """E[M; held | n]: the adds M that joined the batch during the gap, on the event that the
    page is still held (so M < n and no drain came)."""
    d = drain_rate()
    if gap_model == "fixed_count":
        return K * residency_given_adds_to_flush("fixed_count", n)
    if gap_model == "fixed_time":
        # E[N; N < n] = x P(N < n-1) for N ~ Poisson(x)
        return sp.exp(-d * T) * LAM * T * PoissonBelow(n - 1, LAM * T)
    if gap_model == "exponential_time":
        # sum over m < n of m a^m w, where w = P(the WP fault wins the race)
        a = exp_gap_add_ratio()
        w = 1 / (1 + LAM * T + d * T)
        return w * (a - n * a**n + (n - 1) * a ** (n + 1)) / (1 - a) ** 2
    raise ValueError(f"unknown gap_model {gap_model!r}")


def held_batch_fill(gap_model: str, position_model: str) -> sp.Expr:
    """E[F; held]: folios in the page's own batch at the WP fault (the J before it, the page, and
    the adds since), on the event that the batch still holds the page. Divided by the residency
    it is the fill a local drain moves when the writer's CPU holds the page: fuller than the
    stationary average, since the page and everything after it are still there.

    With an exponential gap the sum over positions and adds collapses: with N = B-1-J,
    E[F; held | N=n] = D [(B + a/(1-a)) (1 - a^n) - n], D = 1/(1 + delta t), so
    E[F; held] = (B + lambda t D) R - D (B - 1 - E[J]).
    """
    if gap_model == "exponential_time":
        d_factor = 1 / (1 + drain_rate() * T)
        mean_j = J_FIXED if position_model == "fixed" else expected_occupancy()
        R = residency(gap_model, position_model)
        # a difference of two terms near B when lambda t >> B: kept inside its exact bounds
        # 0 <= E[F; held] <= B R, so rounding cannot make a cost negative
        return Clamp((B + LAM * T * d_factor) * R - d_factor * (B - 1 - mean_j), 0, B * R)
    return held_batch_fill_by_definition(gap_model, position_model)


def held_batch_fill_by_definition(gap_model: str, position_model: str) -> sp.Expr:
    """E[F; held] as the plain sum over the position J of (J+1) r(n) + E[M; held | n]."""

    def given(jj):
        n = B - 1 - jj
        return (jj + 1) * residency_given_adds_to_flush(gap_model, n) + adds_in_gap_while_held(gap_model, n)

    if position_model == "fixed":
        return given(J_FIXED)
    return sp.Sum(position_weight(j) * given(j), (j, 0, B - 1))


def residency_by_definition(gap_model: str, position_model: str) -> sp.Expr:
    """The same probability written as the plain mixture sum over J (no closed form).

    Kept for checks and for the equations shown to users beside the closed form.
    """
    if position_model == "fixed":
        return residency(gap_model, "fixed")
    return sp.Sum(position_weight(j) * residency_given_adds_to_flush(gap_model, B - 1 - j), (j, 0, B - 1))


def fill_after_flush(gap_model: str) -> sp.Expr:
    """E[F | the batch was moved since the page joined it]: the fill of the page's own batch at the
    WP fault when the page is no longer held.

    With an exponential gap it is exact: at the flush that took the page the batch restarts empty
    and, by memorylessness, the rest of the gap is again exponential of mean t; renewing at every
    later flush, g = E[M; no flush | start empty] + P(flush) g, so
    g = E[M; held | n = B] / r(B). For the other gap models the stationary mean fill stands in
    (an approximation; the simulation measures its size)."""
    if gap_model != "exponential_time":
        return expected_occupancy()
    r_empty = residency_given_adds_to_flush(gap_model, B)
    return sp.Piecewise((expected_occupancy(), sp.Eq(r_empty, 0)),
                        (Clamp(adds_in_gap_while_held(gap_model, B) / r_empty, 0, B - 1), True))
