"""Fast numeric evaluation of the symbolic model.

The sympy expressions of every policy are lambdified once per combination of categorical
parameters (``gap_model``, ``position_model``, ``shootdown_model``) with common sub-expressions
shared, and cached. Finite sums over the batch position (``fixed_time`` with a stationary
position) are evaluated as a vectorised loop over the position, masked where it exceeds each
point's batch size. ``sweep`` turns a grid of any parameters into a tidy DataFrame.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import sympy as sp

from . import registry
from .errors import UserError
from .model import CANDIDATES, POLICIES, output_names, policy_outputs, residency
from .model.numeric import lambdify as _lambdify
from .textfmt import format_value

NUMERIC_NAMES: tuple[str, ...] = tuple(registry.NUMERIC)
CATEGORICAL_NAMES: tuple[str, ...] = tuple(registry.CATEGORICAL)
_ARGS = [registry.S[n] for n in NUMERIC_NAMES]
#: a tidy sweep keeps every output per row; beyond this it would not fit in memory comfortably
MAX_SWEEP_ROWS = 5_000_000


@dataclass(frozen=True)
class _MaskedSum:
    """One ``Sum(term, (j, lo, hi))`` with a constant ``lo``, evaluated for array ``hi``."""

    term: Callable
    lo: int
    hi: Callable

    def __call__(self, args: Sequence[np.ndarray]) -> np.ndarray:
        hi = np.asarray(self.hi(*args), dtype=float)
        total = np.zeros(np.broadcast_shapes(hi.shape, *(np.shape(a) for a in args)))
        top = int(np.max(hi)) if hi.size else self.lo - 1
        for jj in range(self.lo, top + 1):
            total = total + np.where(jj <= hi, self.term(float(jj), *args), 0.0)
        return total


@dataclass(frozen=True)
class CompiledModel:
    """Every output of the chosen policies for one categorical combination, as numpy code."""

    policies: tuple[str, ...]
    keys: tuple[tuple[str, str], ...]  # (policy, output) per returned array
    _sums: tuple[_MaskedSum, ...]
    _func: Callable

    def __call__(self, numeric: Mapping[str, object]) -> dict[tuple[str, str], np.ndarray]:
        args = [np.asarray(numeric[n], dtype=float) for n in NUMERIC_NAMES]
        with np.errstate(all="ignore"):  # unused Piecewise branches may divide by zero
            sums = [s(args) for s in self._sums]
            values = self._func(*args, *sums)
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
        return {k: np.broadcast_to(np.asarray(v, dtype=float), shape) for k, v in zip(self.keys, values)}


def _extract_sums(exprs: list[sp.Expr]) -> tuple[list[sp.Expr], list[_MaskedSum], list[sp.Symbol]]:
    sums = sorted({s for e in exprs for s in e.atoms(sp.Sum)}, key=sp.default_sort_key)
    replaced, evaluators, dummies = exprs, [], []
    for k, s in enumerate(sums):
        (idx, lo, hi), = s.limits
        if not lo.is_Integer:
            raise ValueError(f"sum over {idx} needs a constant lower limit, got {lo}")
        dummy = sp.Dummy(f"sum{k}")
        term = _lambdify([idx, *_ARGS], s.function)
        hi_fn = _lambdify(_ARGS, hi)
        evaluators.append(_MaskedSum(term, int(lo), hi_fn))
        dummies.append(dummy)
        replaced = [e.xreplace({s: dummy}) for e in replaced]
    return replaced, evaluators, dummies


@lru_cache(maxsize=64)
def compile_model(gap_model: str, position_model: str, shootdown_model: str,
                  policies: tuple[str, ...] = tuple(POLICIES)) -> CompiledModel:
    for name in policies:
        policy_or_error(name)
    keys, exprs = [], []
    for name in policies:
        for key, expr in policy_outputs(name, gap_model, position_model, shootdown_model).items():
            keys.append((name, key))
            exprs.append(expr)
    exprs, sums, dummies = _extract_sums(exprs)
    func = _lambdify([*_ARGS, *dummies], exprs, cse=True)
    return CompiledModel(tuple(policies), tuple(keys), tuple(sums), func)


def policy_or_error(name: str) -> str:
    if name not in POLICIES:
        raise UserError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    return name


def evaluate_arrays(values: Mapping[str, object], policies: Iterable[str] | None = None) -> dict[tuple[str, str], np.ndarray]:
    """Evaluate at broadcastable numeric arrays; categoricals must be single values here."""
    pols = tuple(policies) if policies else tuple(POLICIES)
    cats = [values[n] for n in CATEGORICAL_NAMES]
    return compile_model(*cats, pols)(values)


def evaluate_point(values: Mapping[str, object], policies: Iterable[str] | None = None) -> dict[str, dict]:
    """All outputs at one checked parameter point, as nested plain floats:
    ``{policy: {output: float, ..., "breakdown_ns": {part: float}}}``."""
    raw = evaluate_arrays(values, policies)
    result: dict[str, dict] = {}
    for (pol, key), arr in raw.items():
        entry = result.setdefault(pol, {"breakdown_ns": {}})
        if key.startswith("breakdown_ns."):
            entry["breakdown_ns"][key.split(".", 1)[1]] = float(arr)
        else:
            entry[key] = float(arr)
    return result


def cheapest_candidate(result: Mapping[str, Mapping]) -> str:
    """The cheapest policy a kernel could adopt (see ``model.CANDIDATES``) among those in an
    :func:`evaluate_point` result; any policy if none of them was evaluated."""
    names = [p for p in result if p in CANDIDATES] or list(result)
    return min(names, key=lambda p: result[p]["expected_ns"])


def residency_value(values: Mapping[str, object]) -> float:
    """P(page still in its batch) at one point."""
    fn = residency_fn(values["gap_model"], values["position_model"])
    with np.errstate(all="ignore"):
        return float(fn({n: values[n] for n in NUMERIC_NAMES}))


@lru_cache(maxsize=16)
def residency_fn(gap_model: str, position_model: str):
    """The model's residency (P(page still held at the WP fault)) as a numeric function of a dict
    of parameter arrays, for one gap and position model (cached)."""
    exprs, sums, dummies = _extract_sums([residency(gap_model, position_model)])
    func = _lambdify([*_ARGS, *dummies], exprs[0])

    def call(numeric):
        args = [np.asarray(numeric[n], dtype=float) for n in NUMERIC_NAMES]
        return func(*args, *[s(args) for s in sums])

    return call


def _grid_axis(name: str, values) -> list:
    return [registry.parse_value(name, v) for v in np.atleast_1d(values).tolist()]


def sweep(grid: Mapping[str, Sequence], base: Mapping[str, object] | None = None,
          policies: Iterable[str] | None = None) -> pd.DataFrame:
    """Evaluate over the Cartesian product of ``grid`` (any parameters, numeric or categorical).

    Returns a tidy DataFrame: one row per point and policy, a column per swept parameter, then
    ``policy`` and every output (breakdown parts as ``breakdown_<part>_ns``).
    """
    pols = tuple(policy_or_error(p) for p in (policies or POLICIES))
    base_values = registry.as_point(base)
    axes = {name: _grid_axis(name, vals) for name, vals in grid.items()}
    for name, vals in axes.items():
        if not vals:
            raise UserError(f"sweep over {name}: no values given")
    rows = int(np.prod([len(v) for v in axes.values()])) * len(pols)
    if rows > MAX_SWEEP_ROWS:
        raise UserError(f"sweep: {rows:,} rows (points x policies) is more than {MAX_SWEEP_ROWS:,}; "
                        "use fewer values per axis or fewer policies")
    numeric_axes = [n for n in axes if n in registry.NUMERIC]
    cat_axes = [n for n in axes if n in registry.CATEGORICAL]
    frames = []
    for cat_combo in itertools.product(*(axes[n] for n in cat_axes)):
        point = dict(base_values, **dict(zip(cat_axes, cat_combo)))
        mesh = np.meshgrid(*(np.asarray(axes[n], dtype=float) for n in numeric_axes), indexing="ij")
        flat = {n: m.ravel() for n, m in zip(numeric_axes, mesh)}
        _check_grid_consistency(point, flat)
        values = dict(point, **flat)
        size = len(next(iter(flat.values()))) if flat else 1
        out = evaluate_arrays(values, pols)
        for pol in pols:
            cols = {n: (flat[n] if n in flat else [point[n]] * size) for n in axes}
            cols["policy"] = [pol] * size
            for key in output_names():
                cols[csv_column(key)] = np.broadcast_to(out[(pol, key)], (size,))
            frames.append(pd.DataFrame(cols))
    df = pd.concat(frames, ignore_index=True)
    for n in numeric_axes:
        if registry.NUMERIC[n].integer:
            df[n] = df[n].astype(int)
    return df


def csv_column(key: str) -> str:
    """Output key -> tidy column name with its unit (``breakdown_ns.copy`` -> ``breakdown_copy_ns``)."""
    if key.startswith("breakdown_ns."):
        return f"breakdown_{key.split('.', 1)[1]}_ns"
    return key


def _check_grid_consistency(point: Mapping[str, object], flat: Mapping[str, np.ndarray]) -> None:
    """The registry's cross-parameter rules, over a whole grid at once."""
    ok = registry.feasible(dict(point, **flat))
    if not np.all(ok):
        bad = int(np.flatnonzero(~np.broadcast_to(ok, np.shape(ok) or (1,)))[0]) if np.ndim(ok) else 0
        example = {n: (np.asarray(flat[n]).flat[bad].item() if n in flat else point[n]) for n in registry.PARAMS}
        broken = next(c for c in registry.CONSTRAINTS if not np.all(c.holds(example)))
        raise UserError(f"sweep: {int(np.size(ok) - np.count_nonzero(ok))} grid points break a rule between "
                        f"parameters, e.g. {broken.message(example)}")


def cpu_overload(values: Mapping[str, object], cpu_us_per_s: Mapping[str, float]) -> str:
    """One warning sentence, or '': the policies whose CPU time per second (``cpu_us_per_s``,
    expected_ns times wp_faults_per_s: every fault of the whole machine priced at the expected
    cost, no queueing) is more than the ``cpus`` CPUs have (``cpus`` s of CPU per second). No
    machine sustains such a fault rate, so the figure describes nothing real."""
    have_us = float(values["cpus"]) * 1e6
    over = {p: float(v) for p, v in cpu_us_per_s.items() if float(v) > have_us}
    if not over:
        return ""
    worst = max(over, key=over.get)
    return (f"warning: at wp_faults_per_s = {format_value(values['wp_faults_per_s'])}, {len(over)} of "
            f"{len(cpu_us_per_s)} policies need more CPU time than the {values['cpus']} CPUs have ({worst}: "
            f"{format_value(over[worst] / 1e6)} s of CPU per second, {over[worst] / have_us:,.0f} times the "
            f"{values['cpus']} s there are): no machine sustains that fault rate; lower wp_faults_per_s or raise cpus")
