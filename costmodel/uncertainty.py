"""How sure is the verdict? Parameter intervals, their propagation to every output, and what
would flip the cheapest policy.

Intervals
---------
:func:`uncertain_parameters` gives every numeric parameter of a point its interval, or none:

* the parameter file's ``ci_low .. ci_high`` where the file has one and the point still holds the
  file's value (``measured``: a bootstrap confidence interval; ``published``: the published range;
  ``assumed``: the range the assumption is meant to cover);
* a parameter the file reports as measured without an interval is taken as exact;
* otherwise :func:`costmodel.registry.default_interval`: the declared plausible range and its
  basis, or a factor ``PRIOR_FACTOR`` either way of the value for a machine cost; nothing for a
  workload parameter, which describes the scenario and stays fixed unless it is widened on
  purpose (``vary={name: (low, high)}``, the commands' ``--vary-range NAME=LO:HI``).

Categorical choices (``gap_model``, ``shootdown_model``, ...) stay fixed and are listed as such.

Distributions
-------------
A file's or the registry's interval is read as a 95% interval around the point's value: a
*two-piece normal* with its median at the value and its 2.5% and 97.5% quantiles at the ends
(a normal of its own width either side, so an asymmetric interval keeps its asymmetry). Where the
interval is positive and spans a factor :data:`LOG_RATIO` or more (and the parameter is not a
probability), this is done in log space (a two-piece log-normal: costs known to a factor). A range given with ``vary`` is read as "anywhere
in it": uniform, or log-uniform under the same rule. Every draw is an inverse-CDF transform of a
uniform restricted to the quantiles of the registry bounds, so draws are truncated at the bounds
without piling up on them; integer parameters are rounded (a range given for one reaches half a
unit past its ends, so each whole number in it is equally likely). Parameters are independent, except
those a fit record says were identified only as a sum (``identifiable``: ``a + b``): they were
split from one measurement in a fixed ratio, so they share one uniform (move together). A draw
that breaks a rule between parameters (:data:`costmodel.registry.CONSTRAINTS`) is drawn again.

Seeds
-----
Draws come in blocks of :data:`DRAW_BLOCK`; block ``i`` comes from
``PCG64(SeedSequence(seed, spawn_key=(i,)))``, so the first ``n`` draws of a seed are the same
whatever ``n``, and a grid cut into chunks (here, or on a Dask cluster) uses the same draws in
every chunk and gives the same numbers wherever each chunk ran.

Outputs
-------
:func:`propagate` evaluates the compiled model (:func:`costmodel.evaluate.evaluate_arrays`) at
every draw: each output's median and 95% interval, and for each candidate policy the probability
that it is the cheapest (ties within :data:`TIE_RTOL` split evenly). :func:`propagate_grid` does
the same over many points at once (sweeps, bands, the probability map). :func:`sensitivity`
gives elasticities from the sympy model, the values at which each parameter alone flips the
cheapest candidate (:func:`costmodel.breakeven.breakeven`), and how much knowing each parameter
exactly would be expected to raise the probability of the verdict: the ranking of what to
measure next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import sympy as sp
from scipy.special import ndtr, ndtri

from . import registry, stats
from .errors import UserError
from .evaluate import NUMERIC_NAMES, evaluate_arrays, evaluate_point, policy_or_error
from .model import CANDIDATES, POLICIES, output_names, policy_outputs

#: an interval that is positive and spans at least this factor is drawn in log space
LOG_RATIO = 3.0
#: draws per seeded block; part of what a seed means (changing it changes the numbers)
DRAW_BLOCK = 4096
#: default number of draws at one point
DRAWS = 10_000
CONFIDENCE = 0.95
#: two costs within this share of the cheapest count as a tie (each tied policy gets an equal share)
TIE_RTOL = 1e-12
#: array elements (points x draws) evaluated at once on a grid: bounds memory, keeps caches warm
CHUNK_ELEMENTS = 1 << 17
#: rounds of redrawing the draws that break a rule, and the least share that must keep it
_MAX_REDRAW_ROUNDS = 5000
_MIN_ACCEPTANCE = 0.01

MEASURED, PUBLISHED, ASSUMED, VARIED = "measured", "published", "assumed", "varied"
TWO_PIECE, LOG_TWO_PIECE, UNIFORM, LOG_UNIFORM, FIXED = (
    "two-piece normal", "two-piece log-normal", "uniform", "log-uniform", "fixed")


# ---- one parameter's interval and distribution ---------------------------------------------------


@dataclass(frozen=True)
class UncertainParameter:
    """One numeric parameter of a point with its interval and where that interval comes from."""

    name: str
    value: float
    low: float
    high: float
    #: measured, published, assumed or varied (a range widened on purpose)
    origin: str
    basis: str
    #: fit-record sum group: parameters with the same group share their uniform draw
    group: str = ""
    #: within a group split from one measured sum in an unknown ratio, this member takes the
    #: opposite quantile (one up, the other down, the sum kept)
    opposite: bool = False
    #: a part of a split sum (fit record ``splits``): (the measured sum, its 95% low, its 95% high);
    #: drawn as the sum drawn from its interval times a share drawn uniformly over the split (its
    #: members' shares a flat Dirichlet), so the parts keep the measured sum
    split: tuple[float, float, float] | None = None

    @property
    def unit(self) -> str:
        return registry.NUMERIC[self.name].unit

    @property
    def measured(self) -> bool:
        return self.origin == MEASURED

    @property
    def varies(self) -> bool:
        return self.high > self.low

    @property
    def log(self) -> bool:
        spec = registry.NUMERIC[self.name]
        return not spec.probability and self.low > 0 and self.high >= LOG_RATIO * self.low

    def _range(self) -> tuple[float, float]:
        """The interval in the transformed space; a range given for an integer parameter reaches
        half a unit past each end, so that every whole number in it is drawn equally often."""
        lo, hi = self.low, self.high
        if self.origin == VARIED and registry.NUMERIC[self.name].integer:
            lo, hi = lo - 0.5 if lo - 0.5 > 0 or not self.log else lo, hi + 0.5
        return float(self._t(lo)), float(self._t(hi))

    @property
    def distribution(self) -> str:
        if not self.varies:
            return FIXED
        if self.origin == VARIED:
            return LOG_UNIFORM if self.log else UNIFORM
        return LOG_TWO_PIECE if self.log else TWO_PIECE

    # -- the transform, in log space where self.log
    def _t(self, x):
        x = np.asarray(x, dtype=float)
        if not self.log:
            return x
        with np.errstate(divide="ignore"):
            return np.log(x)

    def _untransform(self, t):
        return np.exp(t) if self.log else t

    def cdf(self, x) -> np.ndarray:
        """P(X <= x) before truncation at the registry bounds."""
        t, (lo, hi) = self._t(x), self._range()
        if not self.varies:
            return np.where(t >= lo, 1.0, 0.0)
        if self.origin == VARIED:
            return np.clip((t - lo) / (hi - lo), 0.0, 1.0)
        m = float(self._t(self.value))
        s_lo, s_hi = (m - lo) / stats.Z95, (hi - m) / stats.Z95
        with np.errstate(divide="ignore", invalid="ignore"):
            below = ndtr((t - m) / s_lo) if s_lo > 0 else np.where(t >= m, 0.5, 0.0)
            above = ndtr((t - m) / s_hi) if s_hi > 0 else np.ones_like(t)
        return np.where(t < m, below, above)

    def ppf(self, u) -> np.ndarray:
        """The inverse of :meth:`cdf` (before truncation), for quantiles ``u`` in [0, 1]."""
        u = np.asarray(u, dtype=float)
        lo, hi = self._range()
        if not self.varies:
            return np.full(u.shape, float(self.value))
        if self.origin == VARIED:
            t = lo + u * (hi - lo)
        else:
            m = float(self._t(self.value))
            s_lo, s_hi = (m - lo) / stats.Z95, (hi - m) / stats.Z95
            with np.errstate(divide="ignore", invalid="ignore"):
                z = ndtri(u)
                t = m + np.where(u < 0.5, s_lo, s_hi) * z
        return self._untransform(t)

    def truncated_ppf(self, u) -> np.ndarray:
        """Values for uniforms ``u``: the quantile within the registry bounds, rounded where the
        parameter is an integer."""
        spec = registry.NUMERIC[self.name]
        if not self.varies:
            return np.full(np.shape(u), float(self.value))
        a, b = self._bounds_cdf()
        x = self.ppf(a + np.asarray(u, dtype=float) * (b - a))
        x = np.clip(np.nan_to_num(x, nan=float(self.value)), spec.low, spec.high)
        return np.round(x) if spec.integer else x

    def _bounds_cdf(self) -> tuple[float, float]:
        """The CDF at the registry bounds (half a unit beyond them for an integer: a draw is rounded)."""
        spec = registry.NUMERIC[self.name]
        half = 0.5 if spec.integer else 0.0
        low = spec.low - half if (spec.low - half > 0 or not self.log) else spec.low
        return float(self.cdf(low)), float(self.cdf(spec.high + half))

    def truncated_cdf(self, x) -> np.ndarray:
        a, b = self._bounds_cdf()
        if b <= a:
            return np.where(np.asarray(x, dtype=float) >= self.value, 1.0, 0.0)
        return np.clip((self.cdf(x) - a) / (b - a), 0.0, 1.0)

    def as_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "low": self.low, "high": self.high, "unit": self.unit,
                "origin": self.origin, "distribution": self.distribution, "basis": self.basis,
                **({"group": self.group, "opposite": self.opposite} if self.group else {})}


def split_sums(paramset) -> dict[str, tuple[str, tuple[float, float, float]]]:
    """name -> (group label, (sum, sum low, sum high)) for every part of a measured sum that a fit
    record says was split in an assumed ratio (its ``splits``)."""
    out: dict[str, tuple[str, tuple[float, float, float]]] = {}
    for record in getattr(paramset, "fit", None) or []:
        for sp_ in record.get("splits") or []:
            names = [n for n in sp_.get("parameters", []) if n in registry.NUMERIC]
            try:
                total = (float(sp_["sum_ns"]), float(sp_["sum_ci_low"]), float(sp_["sum_ci_high"]))
            except (KeyError, TypeError, ValueError):
                continue
            if len(names) > 1:
                label = "split: " + " + ".join(names)
                out.update({n: (label, total) for n in names})
    return out


def sum_groups(paramset) -> dict[str, tuple[str, bool]]:
    """name -> (group label, opposite) for the parameters a fit record identifies only as a sum.

    ``identifiable: "a + b; c"``: a and b were split from one measurement in a fixed ratio, so
    they move together (same quantile). ``identifiable: "sum only ..."`` of two parameters: the
    split itself is unknown and each interval spans it, so the second takes the opposite
    quantile of the first (one up, the other down: the measured sum stays put)."""
    out: dict[str, tuple[str, bool]] = {}
    for record in getattr(paramset, "fit", None) or []:
        ident = str(record.get("identifiable") or "")
        params = [n for n in record.get("parameters", []) if n in registry.NUMERIC]
        if ident.startswith("sum only"):
            if len(params) == 2:
                label = " + ".join(params)
                out.update({params[0]: (label, False), params[1]: (label, True)})
            continue
        for part in ident.split(";"):
            if part.strip().startswith("split:"):
                continue   # drawn as a split (split_sums)
            members = [m.strip() for m in part.split("+") if m.strip() in registry.NUMERIC]
            if len(members) > 1:
                out.update({m: (" + ".join(members), False) for m in members})
    return out


def _same(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-300)


def uncertain_parameters(values: Mapping[str, object], paramset=None,
                         vary: Mapping[str, tuple[float, float]] | None = None,
                         include_fixed: bool = False) -> list[UncertainParameter]:
    """The numeric parameters of the point ``values`` with their intervals, in registry order
    (see the module docstring for where each interval comes from). ``paramset``: the parameter
    file the point was built from, if any. ``vary``: ranges to widen on purpose (any numeric
    parameter, workload ones included). ``include_fixed``: also list the parameters that stay
    at their value, as zero-width entries."""
    vary = dict(vary or {})
    for name in vary:
        if name not in registry.NUMERIC:
            if name in registry.CATEGORICAL:
                raise UserError(f"--vary-range {name}: a categorical parameter has no range; "
                                f"compare its choices with --set {name}=...")
            raise registry.unknown_parameter(name)
    groups = sum_groups(paramset)
    splits = split_sums(paramset)
    out: list[UncertainParameter] = []
    for name, spec in registry.NUMERIC.items():
        value = float(values[name])
        split = None
        entry = paramset.parameters.get(name) if paramset is not None else None
        from_file = entry is not None and _same(entry.value, value)
        group, opposite = "", False
        if name in vary:
            lo, hi = (float(x) for x in vary[name])
            if not lo <= value <= hi:
                raise UserError(f"--vary-range {name}={lo:g}:{hi:g} leaves out the point's own value {value:g}"
                                f" {spec.unit}; widen the range or move the point with --set {name}=...")
            ok_lo, ok_hi = registry.feasible_range(name, values)
            partners_vary = any(p in vary for p in registry.partners(name))
            if not partners_vary and (lo < ok_lo or hi > ok_hi):
                # the rule as it reads at the end of the range that breaks it, not at the point
                end = dict(values, **{name: (int(hi) if spec.integer else hi) if hi > ok_hi
                                      else (int(lo) if spec.integer else lo)})
                rules = "; ".join(c.message(end) for c in registry.CONSTRAINTS
                                  if name in c.terms and not np.all(c.holds(end)))
                raise UserError(f"--vary-range {name}={lo:g}:{hi:g} goes beyond what the other parameters allow:"
                                f" {name} can go from {ok_lo:g} to {ok_hi:g} here ({rules}); narrow it to"
                                f" {max(lo, ok_lo):g}:{min(hi, ok_hi):g} or --set the other parameter")
            item = UncertainParameter(name, value, lo, hi, VARIED, f"range given: {lo:g} .. {hi:g} {spec.unit}")
        elif from_file and entry.ci_low is not None and entry.ci_high is not None:
            lo, hi = float(entry.ci_low), float(entry.ci_high)
            basis = entry.note or f"{entry.source} interval of the parameter file"
            item = UncertainParameter(name, value, lo, hi, entry.source, basis)
            group, opposite = groups.get(name, ("", False))
            if name in splits and not any(m in vary for m in splits):
                group, split = splits[name][0], splits[name][1]
        elif from_file and entry.source == MEASURED:
            item = UncertainParameter(name, value, value, value, MEASURED,
                                      entry.note or "measured; the file gives no interval")
        else:
            default = registry.default_interval(name, value)
            if default is None:
                item = UncertainParameter(name, value, value, value, "workload" if spec.kind == registry.WORKLOAD
                                          else ASSUMED, "describes the scenario: held at its value")
            else:
                lo, hi, basis = default
                origin = entry.source if from_file else ASSUMED
                if from_file and entry.source == PUBLISHED:
                    basis = f"{entry.note}; no published range, so {basis}" if entry.note else basis
                elif not from_file and entry is not None:
                    basis = f"set to {value:g} (the file says {entry.value:g}); {basis}"
                item = UncertainParameter(name, value, lo, hi, origin, basis)
        # keep the value inside its interval and the interval inside the registry bounds
        lo = min(max(item.low, spec.low), value)
        hi = max(min(item.high, spec.high), value)
        if item.origin == VARIED:
            lo, hi = max(item.low, spec.low), min(item.high, spec.high)
        item = UncertainParameter(item.name, value, lo, hi, item.origin, item.basis, group, opposite,
                                  split if group.startswith("split:") else None)
        if item.varies or include_fixed:
            out.append(item)
    return out


def parameter_table(values: Mapping[str, object], paramset=None, vary=None) -> pd.DataFrame:
    """Every numeric parameter's interval and its basis, tidy (the calibration notebook's table):
    ``parameter``, ``unit``, ``value``, ``low``, ``high``, ``origin``, ``distribution``, ``basis``."""
    rows = [{"parameter": p.name, "unit": p.unit, "value": p.value, "low": p.low, "high": p.high,
             "origin": p.origin, "distribution": p.distribution, "basis": p.basis}
            for p in uncertain_parameters(values, paramset, vary, include_fixed=True)]
    return pd.DataFrame(rows, columns=["parameter", "unit", "value", "low", "high", "origin", "distribution", "basis"])


def parse_vary_ranges(items: Sequence[str] | None) -> dict[str, tuple[float, float]]:
    """``["NAME=LO:HI", ...]`` from the command line, each end checked against the registry."""
    out: dict[str, tuple[float, float]] = {}
    for item in items or []:
        name, sep, rhs = item.partition("=")
        name = name.strip()
        lo_s, colon, hi_s = rhs.partition(":")
        if not sep or not name or not colon:
            raise UserError(f"--vary-range {item!r}: expected NAME=LO:HI, e.g. --vary-range remote_drain_ns=1000:100000")
        if name not in registry.NUMERIC:
            if name in registry.CATEGORICAL:
                raise UserError(f"--vary-range {name}: a categorical parameter has no range; use --set {name}=...")
            raise registry.unknown_parameter(name)
        lo, hi = registry.parse_value(name, lo_s), registry.parse_value(name, hi_s)
        if lo > hi:
            raise UserError(f"--vary-range {item!r}: LO {lo:g} is above HI {hi:g}; give LO <= HI")
        out[name] = (float(lo), float(hi))
    return out


# ---- drawing ---------------------------------------------------------------------------------


def _block_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(index,))))


def _columns(params: Sequence[UncertainParameter]) -> tuple[list[str], dict[str, int]]:
    """One uniform column per independent parameter or sum group; name -> column. A part of a
    split sum has a second column, its share (``<name>#share``), after all the others (so the
    draws of every other parameter do not move when a set gains a split)."""
    keys: list[str] = []
    where: dict[str, int] = {}
    for p in params:
        key = p.group or p.name
        if key not in keys:
            keys.append(key)
        where[p.name] = keys.index(key)
    for p in params:
        if p.split is not None:
            keys.append(f"{p.name}#share")
            where[f"{p.name}#share"] = len(keys) - 1
    return keys, where


def _check_seed(seed, draws) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"--seed {seed!r}: give a whole number >= 0")
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or not 1 <= draws <= 10**8:
        raise UserError(f"--draws {draws!r}: give a whole number of draws from 1 to 100000000")


def draw(params: Sequence[UncertainParameter], values: Mapping[str, object], n: int, seed: int = 0,
         first_block: int = 0) -> tuple[dict[str, np.ndarray], int]:
    """``n`` draws of every varying parameter in ``params`` (name -> array), the others held at
    ``values``; and how many draws were redrawn because they broke a rule between parameters."""
    _check_seed(seed, n)
    params = [p for p in params if p.varies]
    if not params:
        return {}, 0
    keys, where = _columns(params)
    ruled = [c for c in registry.CONSTRAINTS if any(p.name in c.terms for p in params)]
    blocks, redrawn = [], 0
    for b in range(-(-n // DRAW_BLOCK)):
        rng = _block_rng(seed, first_block + b)
        u = rng.random((DRAW_BLOCK, len(keys)))
        cols = _transform(params, where, u)
        if ruled:
            ok = _keeps_rules(ruled, values, cols)
            kept = ok.mean()
            rounds = 0
            while not ok.all():
                bad = np.flatnonzero(~ok)
                if kept < _MIN_ACCEPTANCE or rounds >= _MAX_REDRAW_ROUNDS:
                    rule = next(c for c in ruled if not np.all(c.holds(dict(values, **cols))))
                    raise UserError(f"only {100 * kept:.2g}% of the draws keep the rule "
                                    f"'{rule.explain.split(';')[0].format(**{k: '...' for k in rule.terms})}'; "
                                    "narrow the --vary-range that breaks it or --set its partner")
                redrawn += bad.size
                u[bad] = rng.random((bad.size, len(keys)))
                fresh = _transform(params, where, u[bad])
                for k in cols:
                    cols[k][bad] = fresh[k]
                ok[bad] = _keeps_rules(ruled, values, fresh)
                rounds += 1
        blocks.append(cols)
    out = {p.name: np.concatenate([blk[p.name] for blk in blocks])[:n] for p in params}
    return out, redrawn


def _transform(params, where, u) -> dict[str, np.ndarray]:
    out = {p.name: p.truncated_ppf(_side(p, u[:, where[p.name]])) for p in params if p.split is None}
    groups: dict[str, list[UncertainParameter]] = {}
    for p in params:
        if p.split is not None:
            groups.setdefault(p.group, []).append(p)
    for members in groups.values():
        total, lo, hi = members[0].split
        z = _norm_ppf(np.clip(u[:, where[members[0].name]], 1e-12, 1 - 1e-12))
        # a two-piece normal of the measured sum (its 95% interval either side)
        sums = np.maximum(total + z * np.where(z < 0, total - lo, hi - total) / Z95_, 0.0)
        e = -np.log(np.clip(np.stack([u[:, where[f"{m.name}#share"]] for m in members], axis=1), 1e-300, 1.0))
        shares = e / e.sum(axis=1, keepdims=True)   # flat Dirichlet: every split of the sum alike
        for i, m in enumerate(members):
            spec = registry.NUMERIC[m.name]
            out[m.name] = np.clip(shares[:, i] * sums, spec.low, spec.high)
    return out


Z95_ = 1.959963984540054


def _norm_ppf(u):
    from scipy.special import ndtri

    return ndtri(u)


def _side(p: UncertainParameter, u):
    return 1.0 - u if p.opposite else u


def _keeps_rules(rules, values, cols) -> np.ndarray:
    point = dict(values, **cols)
    n = len(next(iter(cols.values())))
    ok = np.ones(n, dtype=bool)
    for c in rules:
        ok &= np.broadcast_to(c.holds(point), (n,))
    return ok


# ---- who is cheapest -------------------------------------------------------------------------


def cheapest_shares(costs: np.ndarray) -> np.ndarray:
    """For costs of shape (candidates, ...), each candidate's share of being the cheapest at each
    position: 1 for the cheapest, ties within :data:`TIE_RTOL` split evenly."""
    costs = np.asarray(costs, dtype=float)
    low = np.min(costs, axis=0)
    tie = costs <= low + TIE_RTOL * np.abs(low)
    return tie / np.sum(tie, axis=0)


def _candidates(policies: Sequence[str]) -> tuple[str, ...]:
    """The candidates among ``policies`` (see ``model.CANDIDATES``); all of them if none is."""
    return tuple(p for p in policies if p in CANDIDATES) or tuple(policies)


# ---- at one point ----------------------------------------------------------------------------


@dataclass
class Propagation:
    """Every output of the chosen policies at one point, with its interval from the parameters'."""

    values: dict
    policies: tuple[str, ...]
    candidates: tuple[str, ...]
    parameters: list[UncertainParameter]
    draws: int
    seed: int
    confidence: float
    #: policy -> output -> {"value", "median", "low", "high", "mean"} ("value": at the point itself)
    outputs: dict[str, dict[str, dict[str, float]]]
    #: candidate -> probability that it is the cheapest candidate
    p_cheapest: dict[str, float]
    #: the cheapest candidate at the point itself (every parameter at its value)
    cheapest: str
    redrawn: int = 0
    #: policy -> expected_ns at every draw (for pairwise questions; not written out)
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def measured(self) -> list[UncertainParameter]:
        return [p for p in self.parameters if p.measured]

    @property
    def assumed(self) -> list[UncertainParameter]:
        return [p for p in self.parameters if not p.measured]

    def p_cheaper(self, a: str, b: str) -> float:
        """P(``a`` costs less than ``b``), ties split."""
        return float(cheapest_shares(np.stack([self.samples[a], self.samples[b]]))[0].mean())

    def ratio_interval(self, a: str, b: str) -> tuple[float, float, float]:
        """Median and interval of cost(a) / cost(b) over the draws."""
        q = (1 - self.confidence) / 2
        r = self.samples[a] / self.samples[b]
        lo, med, hi = np.quantile(r, [q, 0.5, 1 - q])
        return float(med), float(lo), float(hi)

    def fixed_categoricals(self) -> dict[str, str]:
        return {n: self.values[n] for n in registry.CATEGORICAL}

    def summary(self) -> str:
        """One line: draws, seed, how many parameters vary and of which origin, what is fixed."""
        counts: dict[str, int] = {}
        for p in self.parameters:
            counts[p.origin] = counts.get(p.origin, 0) + 1
        origins = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "none"
        cats = ", ".join(f"{k}={v}" for k, v in self.fixed_categoricals().items())
        return (f"{self.draws:,} draws, seed {self.seed}; {len(self.parameters)} parameters vary ({origins}); "
                f"held fixed: workload parameters without a range, {cats}")

    def to_dict(self) -> dict:
        return {"draws": self.draws, "seed": self.seed, "confidence": self.confidence,
                "draw_block": DRAW_BLOCK, "redrawn": self.redrawn,
                "method": "Monte Carlo over the parameters' intervals (see costmodel.uncertainty)",
                "cheapest": self.cheapest, "candidates": list(self.candidates),
                "p_cheapest": self.p_cheapest, "parameters": [p.as_dict() for p in self.parameters],
                "fixed_categoricals": self.fixed_categoricals(), "outputs": self.outputs}


def propagate(values: Mapping[str, object], params: Sequence[UncertainParameter] | None = None, *,
              draws: int = DRAWS, seed: int = 0, policies: Iterable[str] | None = None,
              confidence: float = CONFIDENCE, paramset=None) -> Propagation:
    """Monte Carlo over the intervals of ``params`` (default: :func:`uncertain_parameters` of
    ``values`` and ``paramset``) at the point ``values``."""
    values = registry.resolve(values)
    pols = tuple(policy_or_error(p) for p in (policies or POLICIES))
    if not 0 < confidence < 1:
        raise UserError(f"confidence={confidence!r}: give a probability strictly between 0 and 1")
    if params is None:
        params = uncertain_parameters(values, paramset)
    params = [p for p in params if p.varies]
    sample, redrawn = draw(params, values, draws, seed)
    out = evaluate_arrays(dict(values, **sample), pols)
    at = evaluate_point(values, pols)
    q = (1 - confidence) / 2
    keys = output_names()
    stacked = np.stack([np.broadcast_to(out[(p, k)], (draws,)) for p in pols for k in keys])
    lo, med, hi = np.quantile(stacked, [q, 0.5, 1 - q], axis=1)
    mean = stacked.mean(axis=1)
    outputs: dict[str, dict[str, dict[str, float]]] = {}
    for i, (p, k) in enumerate((p, k) for p in pols for k in keys):
        point_value = at[p]["breakdown_ns"][k.split(".", 1)[1]] if k.startswith("breakdown_ns.") else at[p][k]
        outputs.setdefault(p, {})[k] = {"value": float(point_value), "median": float(med[i]), "low": float(lo[i]),
                                        "high": float(hi[i]), "mean": float(mean[i])}
    cands = _candidates(pols)
    samples = {p: np.array(np.broadcast_to(out[(p, "expected_ns")], (draws,))) for p in pols}
    shares = cheapest_shares(np.stack([samples[p] for p in cands])).mean(axis=1)
    cheapest = min(cands, key=lambda p: at[p]["expected_ns"])
    return Propagation(dict(values), pols, cands, list(params), int(draws), int(seed), float(confidence), outputs,
                       {p: float(s) for p, s in zip(cands, shares)}, cheapest, redrawn, samples)


# ---- over many points ------------------------------------------------------------------------


@dataclass
class GridUncertainty:
    """Outputs' intervals and each candidate's P(cheapest) at every point of a grid."""

    candidates: tuple[str, ...]
    #: (candidate, point): probability that it is the cheapest
    p_cheapest: np.ndarray
    #: (policy, output) -> (low, high) arrays over the points
    intervals: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
    #: draws that kept every rule, per point
    draws_kept: np.ndarray
    draws: int
    seed: int
    parameters: list[UncertainParameter]


@dataclass(frozen=True)
class _GridTask:
    values: dict
    policies: tuple[str, ...]
    candidates: tuple[str, ...]
    keys: tuple[str, ...]
    confidence: float
    sample: dict


def _grid_chunk(task: _GridTask, axes: dict) -> tuple:
    """P(cheapest) counts and intervals for the points of one chunk: the axes as columns
    (points, 1), the draws as rows (1, draws), so what depends on the point alone is computed
    once per point and what depends on the draws alone once per draw."""
    point = dict(task.values)
    point.update({n: np.asarray(a, dtype=float)[:, None] for n, a in axes.items()})
    point.update({n: a[None, :] for n, a in task.sample.items()})
    npts = len(next(iter(axes.values())))
    ndraw = len(next(iter(task.sample.values()))) if task.sample else 1
    shape = (npts, ndraw)
    ok = np.broadcast_to(registry.feasible(point), shape)
    out = evaluate_arrays(point, task.policies)
    shares = cheapest_shares(np.stack([np.broadcast_to(out[(p, "expected_ns")], shape) for p in task.candidates]))
    kept = ok.sum(axis=1)
    wins = np.where(ok[None], shares, 0.0).sum(axis=2)
    q = (1 - task.confidence) / 2
    intervals = {}
    for p in task.policies:
        for k in task.keys:
            arr = np.broadcast_to(out[(p, k)], shape)
            if not ok.all():
                arr = np.where(ok, arr, np.nan)
                with np.errstate(all="ignore"):
                    lo, hi = np.nanquantile(arr, [q, 1 - q], axis=1) if ok.any() else (np.full(npts, np.nan),) * 2
            else:
                lo, hi = np.quantile(arr, [q, 1 - q], axis=1)
            intervals[(p, k)] = (lo, hi)
    return wins, kept, intervals


def propagate_grid(values: Mapping[str, object], axes: Mapping[str, Sequence[float]],
                   params: Sequence[UncertainParameter] | None = None, *, draws: int = 1000, seed: int = 0,
                   policies: Iterable[str] | None = None, keys: Sequence[str] = ("expected_ns",),
                   confidence: float = CONFIDENCE, paramset=None, scheduler=None) -> GridUncertainty:
    """:func:`propagate` at every point of ``axes`` (name -> values, one per point; a parameter
    on an axis is not drawn), with the same draws at every point. The points are cut into chunks
    of about :data:`CHUNK_ELEMENTS` evaluations; ``scheduler``: a dask.distributed address or
    Client to run them on (the numbers do not change)."""
    pols = tuple(policy_or_error(p) for p in (policies or POLICIES))
    cands = _candidates(pols)
    if params is None:
        params = uncertain_parameters(values, paramset)
    ax = {n: np.asarray(v, dtype=float).ravel() for n, v in axes.items()}
    if not ax:
        raise ValueError("propagate_grid needs at least one axis; use propagate at one point")
    npts = len(next(iter(ax.values())))
    for n, a in ax.items():
        if a.shape != (npts,):
            raise ValueError(f"axis {n}: {a.shape} values, expected {npts}")
    drawn = [p for p in params if p.varies and p.name not in ax]
    sample, _ = draw(drawn, values, draws, seed)
    task = _GridTask(dict(values), pols, cands, tuple(keys), float(confidence), sample)
    per = max(1, CHUNK_ELEMENTS // max(1, draws if sample else 1))
    chunks = [{n: a[s:s + per] for n, a in ax.items()} for s in range(0, npts, per)]
    results = _run(task, chunks, scheduler)
    wins = np.concatenate([r[0] for r in results], axis=1)
    kept = np.concatenate([r[1] for r in results])
    intervals = {key: (np.concatenate([r[2][key][0] for r in results]), np.concatenate([r[2][key][1] for r in results]))
                 for key in results[0][2]}
    with np.errstate(all="ignore"):
        p = np.where(kept > 0, wins / np.maximum(kept, 1), np.nan)
    return GridUncertainty(cands, p, intervals, kept, int(draws), int(seed), drawn)


def _run(task: _GridTask, chunks: list[dict], scheduler) -> list:
    if scheduler is None:
        return [_grid_chunk(task, c) for c in chunks]
    try:
        from distributed import Client
    except ImportError:
        raise UserError("--scheduler needs dask.distributed; install costmodel[dask]") from None
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="10s", set_as_default=False) if own else scheduler
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"scheduler {scheduler!r}: cannot connect ({exc}); give a running dask scheduler's address") from None
    try:
        [shared] = client.scatter([task], broadcast=True)
        futures = client.map(_grid_chunk, [shared] * len(chunks), chunks, pure=False)
        return client.gather(futures)
    finally:
        if own:
            client.close()


# ---- sensitivity -----------------------------------------------------------------------------


class _Inside(sp.Function):
    """1 where ``lo <= x <= hi``, else 0: the derivative of a clamp with respect to its argument."""

    nargs = 3

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _numpycode(self, printer):
        x, lo, hi = (printer._print(a) for a in self.args)
        where = printer._module_format("numpy.where")
        return f"{where}(({x} >= {lo}) & ({x} <= {hi}), 1.0, 0.0)"


class _DiffClamp(sp.Function):
    """The model's ``Clamp`` with a derivative (the model's own has none: it is never
    differentiated there); prints as numpy's clip."""

    nargs = 3

    def fdiff(self, argindex=1):
        x, lo, hi = self.args
        return _Inside(x, lo, hi) if argindex == 1 else sp.S.Zero

    def _numpycode(self, printer):
        x, lo, hi = (printer._print(a) for a in self.args)
        return f"{printer._module_format('numpy.clip')}({x}, {lo}, {hi})"


class _DiffPoissonBelow(sp.Function):
    """The model's ``PoissonBelow(n, x)`` with its derivative in x (the Poisson probability of
    n - 1, negated); in n it has none in closed form (that parameter falls back to differences)."""

    nargs = 2

    def fdiff(self, argindex=1):
        n, x = self.args
        if argindex == 2:
            return -sp.exp(-x) * x ** (n - 1) / sp.gamma(n)
        return sp.Derivative(self, n)

    def _numpycode(self, printer):
        n, x = (printer._print(a) for a in self.args)
        return f"PoissonBelow({n}, {x})"


def _differentiable(expr: sp.Expr) -> sp.Expr:
    from .model.special import Clamp, PoissonBelow

    return expr.replace(Clamp, _DiffClamp).replace(PoissonBelow, _DiffPoissonBelow)


@lru_cache(maxsize=64)
def _expected_ns(policy: str, categoricals: tuple[str, ...]) -> sp.Expr:
    return policy_outputs(policy, *categoricals)["expected_ns"]


@lru_cache(maxsize=64)
def _gradient(policy: str, categoricals: tuple[str, ...], names: tuple[str, ...]):
    """d expected_ns / d name for each name, lambdified together; None where sympy leaves a
    derivative it cannot express, or a sum over the batch position, in the result."""
    from .model.numeric import lambdify

    f = _differentiable(_expected_ns(policy, categoricals))
    args = [registry.S[n] for n in NUMERIC_NAMES]
    exprs, ok = [], []
    for n in names:
        d = sp.diff(f, registry.S[n])
        good = not (d.has(sp.Derivative) or d.has(sp.Sum) or d.has(sp.Subs))
        exprs.append(d if good else sp.S.Zero)
        ok.append(good)
    fn = lambdify(args, exprs, cse=True)
    return fn, tuple(ok)


def _cats(values) -> tuple[str, ...]:
    return tuple(values[n] for n in registry.CATEGORICAL)


def _difference_gradient(values, policy: str, name: str) -> float:
    """Central (one-sided at a bound) difference of expected_ns in ``name``; integers step by 1."""
    spec = registry.NUMERIC[name]
    x = float(values[name])
    h = 1.0 if spec.integer else max(abs(x) * 1e-6, 1e-12 * max(1.0, spec.high))
    lo, hi = registry.feasible_range(name, values)
    a, b = max(lo, x - h), min(hi, x + h)
    if b <= a:
        return 0.0
    out = evaluate_arrays(dict(values, **{name: np.array([a, b])}), (policy,))[(policy, "expected_ns")]
    return float((out[1] - out[0]) / (b - a))


def elasticities(values: Mapping[str, object], names: Sequence[str] | None = None,
                 policies: Iterable[str] | None = None) -> pd.DataFrame:
    """d ln(expected_ns) / d ln(parameter) of each policy at ``values``: by sympy's derivative of
    the policy's expected cost, lambdified, where that has a closed form; by a central
    difference of the compiled model otherwise (``method`` says which). One row per (parameter,
    policy): ``parameter``, ``policy``, ``value``, ``expected_ns``, ``d_expected_ns`` (ns per
    unit of the parameter), ``elasticity``, ``method``. A parameter at 0 has elasticity 0."""
    values = registry.resolve(values)
    pols = tuple(policy_or_error(p) for p in (policies or POLICIES))
    names = tuple(names or NUMERIC_NAMES)
    at = evaluate_point(values, pols)
    rows = []
    args = [float(values[n]) for n in NUMERIC_NAMES]
    for p in pols:
        fn, ok = _gradient(p, _cats(values), names)
        with np.errstate(all="ignore"):
            grads = [float(np.asarray(g)) for g in fn(*args)]
        for n, g, good in zip(names, grads, ok):
            method = "sympy"
            if not good or not math.isfinite(g):
                g, method = _difference_gradient(values, p, n), "central difference"
            f = at[p]["expected_ns"]
            x = float(values[n])
            rows.append({"parameter": n, "policy": p, "value": x, "expected_ns": f, "d_expected_ns": g,
                         "elasticity": g * x / f if f and x else 0.0, "method": method})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Flip:
    """Where moving one parameter alone changes the cheapest candidate, each side of its value."""

    parameter: str
    value: float
    cheapest: str
    #: the value at which another candidate becomes cheaper below / above the point (None: it
    #: does not within the registry bounds), and which candidate that is
    below: float | None = None
    below_to: str = ""
    above: float | None = None
    above_to: str = ""


def flip_values(values: Mapping[str, object], names: Sequence[str], candidates: Sequence[str] = CANDIDATES,
                rtol: float | None = None) -> list[Flip]:
    """For each parameter of ``names``, the nearest values each side of the point at which the
    cheapest of ``candidates`` changes, every other parameter held: from the break-evens of the
    cheapest against each other candidate (:func:`costmodel.breakeven.breakeven`). For an integer
    parameter ``above`` is the first integer at which another candidate is cheaper, and ``below``
    the last one below the point (the break-even is then ``below + 1``)."""
    from .breakeven import EQUAL, breakeven

    values = registry.resolve(values)
    cands = tuple(policy_or_error(p) for p in candidates)
    at = evaluate_point(values, cands)
    best = min(cands, key=lambda p: at[p]["expected_ns"])
    kw = {} if rtol is None else {"rtol": rtol}
    out = []
    for name in names:
        x = float(values[name])
        below, below_to, above, above_to = None, "", None, ""
        sym = registry.S[name]
        for other in cands:
            # a parameter in neither cost cannot change their order: no break-even to look for
            if other == best or not any(sym in _expected_ns(p, _cats(values)).free_symbols for p in (best, other)):
                continue
            try:
                be = breakeven(values, best, other, name, **kw)
            except UserError:
                continue
            for lo, hi, who in be.regions:
                if who != other or who == EQUAL:
                    continue
                if lo > x and (above is None or lo < above):
                    above, above_to = float(lo), other
                if hi < x and (below is None or hi > below):
                    below, below_to = float(hi), other
        out.append(Flip(name, x, best, below, below_to, above, above_to))
    return out


def _margins(values, best, cands, name, xs) -> dict[str, np.ndarray]:
    """Each other candidate's cost minus ``best``'s as ``name`` takes the values ``xs``
    (negative: that candidate has overtaken the verdict)."""
    out = evaluate_arrays(dict(values, **{name: np.asarray(xs, dtype=float)}), cands)
    c = {p: np.broadcast_to(np.asarray(out[(p, "expected_ns")], dtype=float), np.shape(xs)) for p in cands}
    return {p: c[p] - c[best] for p in cands if p != best}


def _moves(m: np.ndarray) -> bool:
    """Whether a margin changes over the scan (more than rounding): a candidate whose margin to the
    verdict does not move with the parameter cannot overtake it by that parameter alone."""
    return bool(np.ptp(m) > 1e-9 * max(1.0, float(np.max(np.abs(m)))))


def rival_margin(values, best, cands, name, xs, flip: "Flip | None" = None) -> tuple[str, np.ndarray, bool]:
    """The runner-up that can actually overtake ``best`` as ``name`` alone moves over ``xs``, and
    its cost minus ``best``'s at each of ``xs``. It is the candidate a flip search found
    (``flip``: the nearer flip where there is one each side), else, of the candidates whose margin
    moves with the parameter, the one that comes closest; only when none moves (the parameter
    shifts every candidate alike) the cheapest other candidate, whose margin is then constant
    (the third value, whether the rival's margin moves, is then False).
    A candidate that differs from the verdict by a constant (``drain_local_always`` beside
    ``drain_local``) is thus never the bar: it could not overtake whatever the value."""
    ms = _margins(values, best, cands, name, xs)
    x = float(values[name])
    if flip is not None and (flip.below_to or flip.above_to):
        sides = [(x - flip.below, flip.below_to) if flip.below_to else None,
                 (flip.above - x, flip.above_to) if flip.above_to else None]
        who = min((s for s in sides if s is not None), key=lambda s: s[0])[1]
        return who, ms[who], True
    movers = [p for p, m in ms.items() if _moves(m)]
    pool = movers or list(ms)
    who = min(pool, key=lambda p: float(np.min(ms[p])))
    return who, ms[who], bool(movers)


def _certainty_if_known(values, params, cands, seed: int, quadrature: int, draws: int) -> tuple[dict, float]:
    """For each parameter: the probability of the verdict expected once that parameter is known
    exactly (E over its distribution of max_k P(k cheapest | it)), by ``quadrature`` equal-mass
    nodes of its distribution, the other parameters at the same draws (common random numbers);
    and the probability of the verdict now, from those same draws (so that a parameter the costs
    do not depend on gains exactly nothing)."""
    sample, _ = draw(params, values, draws, seed)

    def certainty(point, shape) -> float:
        ok = np.broadcast_to(registry.feasible(point), shape)
        out = evaluate_arrays(point, cands)
        shares = cheapest_shares(np.stack([np.broadcast_to(out[(c, "expected_ns")], shape) for c in cands]))
        kept = np.maximum(ok.sum(axis=-1), 1)
        p_given = np.where(ok[None], shares, 0.0).sum(axis=-1) / kept  # (candidate, node...)
        return float(np.mean(p_given.max(axis=0)))

    now = certainty(dict(values, **sample), (draws,))
    u = (np.arange(quadrature) + 0.5) / quadrature
    known = {}
    for p in params:
        nodes = p.truncated_ppf(u)
        point = dict(values, **{k: v[None, :] for k, v in sample.items()})
        # a sum group is known together: its members were split from one measurement
        for q in [q for q in params if p.group and q.group == p.group] or [p]:
            point[q.name] = (nodes if q is p else q.truncated_ppf(_side(q, _side(p, u))))[:, None]
        known[p.name] = certainty(point, (quadrature, draws))
    return known, now


@dataclass
class Sensitivity:
    """Which parameters the verdict rests on, and which measurement would settle it soonest."""

    propagation: Propagation
    #: one row per uncertain parameter, ranked (see :func:`sensitivity`)
    table: pd.DataFrame
    #: every policy's elasticity to every uncertain parameter (tidy, from :func:`elasticities`)
    elasticities: pd.DataFrame
    flips: list[Flip]

    @property
    def cheapest(self) -> str:
        return self.propagation.cheapest

    def top(self, n: int = 2) -> pd.DataFrame:
        return self.table.head(n)


def _el_of(el: pd.DataFrame, name: str, policy: str) -> float:
    mine = el[(el["parameter"] == name) & (el["policy"] == policy)] if not el.empty else el
    return float(mine["elasticity"].iloc[0]) if len(mine) else 0.0


def sensitivity(values: Mapping[str, object], params: Sequence[UncertainParameter] | None = None, *,
                paramset=None, draws: int = DRAWS, seed: int = 0, quadrature: int = 8,
                gain_draws: int = 2000, swing_points: int = 41, flips_for: int | None = None) -> Sensitivity:
    """Elasticities, flip values and the ranking of the uncertain parameters at ``values``.

    The ranking: ``gain`` is how much the probability of the verdict (that of the most probable
    cheapest candidate) is expected to rise once the parameter is known exactly, the others as
    uncertain as before: the expected value of perfect information about it, for the decision's
    confidence. Ties (parameters that gain nothing) are ordered by the size of the cheapest
    policy's elasticity. ``flip_below``/``flip_above`` (:func:`flip_values`) and
    ``p_flip_alone``, the probability that the parameter alone, within its interval, lies beyond
    one of them, for the first ``flips_for`` of the ranking (default: all; ``flip_searched``
    says which were searched: a row not searched is "not searched", never "no flip").
    ``margin_min`` .. ``margin_max`` (the tornado's bar): the cost of ``rival`` minus the
    verdict's, lowest and highest over the parameter's interval with the others at their values
    (``margin_at_low``/``_at_high`` at its ends, ``margin_at_value`` at the point); ``rival`` is
    the runner-up that can actually overtake the verdict as this parameter moves
    (:func:`rival_margin`; ``rival_moves`` False: the parameter shifts every candidate alike).
    Below zero the verdict has flipped, so a bar crosses zero exactly
    when ``flip_in_interval``."""
    values = registry.resolve(values)
    if params is None:
        params = uncertain_parameters(values, paramset)
    params = [p for p in params if p.varies]
    prop = propagate(values, params, draws=draws, seed=seed, policies=POLICIES)
    cands = prop.candidates
    best = prop.cheapest
    names = [p.name for p in params]
    el = elasticities(values, names, POLICIES) if names else pd.DataFrame(
        columns=["parameter", "policy", "value", "expected_ns", "d_expected_ns", "elasticity", "method"])
    known, now = _certainty_if_known(values, params, cands, seed, quadrature, min(gain_draws, draws)) \
        if params else ({}, max(prop.p_cheapest.values()))
    # what would flip it: searched for the first ``flips_for`` of the ranking, which is known only
    # after the gains, so the gains come first (the order does not depend on the flips)
    order = sorted(params, key=lambda p: (-(known.get(p.name, now) - now), -abs(_el_of(el, p.name, best))))
    searched = {fl.parameter: fl for fl in flip_values(values, [p.name for p in order][:flips_for], cands)}
    rows = []
    for p in order:
        xs = p.truncated_ppf(np.linspace(0.0, 1.0, swing_points))
        xs = np.unique(np.concatenate([xs, [p.low, p.high, p.value]]))
        xs = xs[(xs >= p.low) & (xs <= p.high)]
        fl = searched.get(p.name)
        if fl is not None:  # the scan also passes through the flips inside the interval
            xs = np.unique(np.concatenate([xs, [v for v in (fl.below, fl.above) if v is not None
                                                and p.low <= v <= p.high]]))
        rival, m, moves = rival_margin(values, best, cands, p.name, xs, fl)
        at_value = float(m[int(np.argmin(np.abs(xs - p.value)))])
        row = {
            "parameter": p.name, "unit": p.unit, "value": p.value, "low": p.low, "high": p.high,
            "origin": p.origin, "distribution": p.distribution, "basis": p.basis,
            "elasticity": _el_of(el, p.name, best), "flip_searched": fl is not None,
            "flip_below": None, "flips_to_below": "", "flip_above": None, "flips_to_above": "",
            "flip_in_interval": False, "p_flip_alone": np.nan, "rival": rival, "rival_moves": moves,
            "margin_at_value": at_value, "margin_at_low": float(m[0]), "margin_at_high": float(m[-1]),
            "margin_min": float(m.min()), "margin_max": float(m.max()),
            "certainty_if_known": known.get(p.name, now), "gain": known.get(p.name, now) - now,
        }
        if fl is not None:
            half = 0.5 if registry.NUMERIC[p.name].integer else 0.0  # an integer is a rounded draw
            lo_cdf = float(p.truncated_cdf(fl.below + half)) if fl.below is not None else 0.0
            hi_cdf = 1.0 - float(p.truncated_cdf(fl.above - half)) if fl.above is not None else 0.0
            row.update(flip_below=fl.below, flips_to_below=fl.below_to, flip_above=fl.above,
                       flips_to_above=fl.above_to,
                       flip_in_interval=bool((fl.below is not None and fl.below >= p.low)
                                             or (fl.above is not None and fl.above <= p.high)),
                       p_flip_alone=min(1.0, max(0.0, lo_cdf + hi_cdf)))
        rows.append(row)
    cols = ["parameter", "unit", "value", "low", "high", "origin", "distribution", "basis", "elasticity",
            "flip_searched", "flip_below", "flips_to_below", "flip_above", "flips_to_above", "flip_in_interval",
            "p_flip_alone", "rival", "rival_moves", "margin_at_value", "margin_at_low", "margin_at_high", "margin_min",
            "margin_max", "certainty_if_known", "gain"]
    table = pd.DataFrame(rows, columns=cols).astype({"flip_below": object, "flip_above": object})
    for c in ("flip_below", "flip_above"):  # "no flip" is None, never NaN
        table[c] = pd.Series([None if v is None or v != v else float(v) for v in table[c]], index=table.index,
                             dtype=object)
    flips = [searched[n] for n in table["parameter"] if n in searched]
    return Sensitivity(prop, table, el, flips)


# ---- what was measured ---------------------------------------------------------------------------


def measured_targets(paramset) -> tuple[int | None, str]:
    """The largest number of shootdown target CPUs a parameter set's measurements covered, and
    a sentence saying where that comes from: the fit records' measured points (``target_cpus``),
    else the measured machine's CPU count in the provenance (at most all other CPUs); None when
    neither says (a set of assumptions, or no set)."""
    if paramset is None:
        return None, "no parameter set: nothing was measured, so no range is marked as extrapolated"
    best = None
    for record in paramset.fit or []:
        said = record.get("measured_targets_max")
        if isinstance(said, int) and not isinstance(said, bool):
            return said, (f"the shootdown was measured at up to {said} target CPU{'s' if said != 1 else ''} "
                          f"(fit '{record.get('name', '?')}' of {paramset.name})")
        for row in record.get("residuals") or []:
            t = row.get("target_cpus")
            if isinstance(t, (int, float)) and not isinstance(t, bool):
                best = max(best or 0, int(t))
        if best is not None:
            return best, (f"the shootdown was measured at up to {best} target CPU{'s' if best != 1 else ''} "
                          f"(fit '{record.get('name', '?')}' of {paramset.name})")
    cpus = (paramset.provenance or {}).get("online_cpus")
    if isinstance(cpus, int) and cpus >= 2:
        return cpus - 1, f"the measured machine had {cpus} CPUs (provenance of {paramset.name}): at most {cpus - 1} targets"
    return None, (f"{paramset.name} does not say at how many target CPUs the shootdown was measured, "
                  "so no range is marked as extrapolated")
