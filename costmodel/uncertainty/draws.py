"""Each numeric parameter's interval and distribution, and the draws from them (see
:mod:`costmodel.uncertainty` for the rules: where an interval comes from, the two-piece normal and
log-normal, truncation at the bounds, sum groups, rules between parameters, and the seeds)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from .. import registry, stats
from ..errors import UserError


#: an interval that is positive and spans at least this factor is drawn in log space
LOG_RATIO = 3.0
#: draws per seeded block; part of what a seed means (changing it changes the numbers)
DRAW_BLOCK = 4096
#: default number of draws at one point
DRAWS = 10_000
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
    out = {p.name: p.truncated_ppf(oriented_uniform(p, u[:, where[p.name]])) for p in params if p.split is None}
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
    return ndtri(u)


def oriented_uniform(p: UncertainParameter, u):
    """``u`` as ``p``'s own uniform: turned round (1 - u) for a member of a sum group that moves
    opposite to the group's shared draw."""
    return 1.0 - u if p.opposite else u


def _keeps_rules(rules, values, cols) -> np.ndarray:
    point = dict(values, **cols)
    n = len(next(iter(cols.values())))
    ok = np.ones(n, dtype=bool)
    for c in rules:
        ok &= np.broadcast_to(c.holds(point), (n,))
    return ok


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
