"""Break-even: where two policies' expected costs per WP fault are equal, as one parameter moves.

This module is the one computation of a break-even; the ``breakeven`` command and the report's
table both come here (:func:`breakeven`, :func:`breakeven_row`).

The difference of the two costs is scanned over the parameter's range (log-spaced where the
registry says so or the range spans decades; every integer for integer parameters with a modest
range). Two costs are *equal* at a point when they differ by at most ``rtol`` times the larger of
the two (:data:`REL_TOL` unless told), and the answer says so. Then:

* a real-valued parameter's break-evens are the points where the difference crosses zero: exact
  roots from sympy when, with every other parameter fixed, the difference is a polynomial of low
  degree in it; otherwise each sign change of the scan refined by scipy's ``brentq``;
* an integer parameter's break-evens are the integers at which the order of the two policies
  changes (the first integer of each new run). Where the formula can be evaluated between the
  integers, the continuous crossing (where the two curves meet) is reported beside it, so a
  crossing at 7.17 and an order change at 8 are the same answer told two ways.

The range is the registry's bounds (or ``low``/``high``) narrowed by the rules between
parameters (:data:`costmodel.registry.CONSTRAINTS`); when a rule cuts it, the answer says which
rule, and which value of the other parameter would widen it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from . import registry
from .errors import UserError
from .evaluate import NUMERIC_NAMES, evaluate_arrays, policy_or_error
from .model import policy_outputs
from .model.special import Clamp

#: two costs are equal when they differ by at most this share of the larger one
REL_TOL = 1e-9
_SCAN_POINTS = 4001
_MAX_POLY_DEGREE = 4
#: an integer parameter is scanned at every integer up to this many values
_ALL_INTEGERS = 20001
EQUAL = "equal"


@dataclass
class BreakEven:
    policy: str
    against: str
    parameter: str
    #: the range searched, after the rules between parameters (ints for an integer parameter)
    low: float
    high: float
    integer: bool = False
    rtol: float = REL_TOL
    #: real parameter: where the costs are equal; integer parameter: the integers where the order changes
    roots: list[float] = field(default_factory=list)
    #: where the two cost curves meet treating the parameter as continuous (for a real parameter:
    #: the same as ``roots``); for an integer one, empty where the formula is not continuous in it
    crossings: list[float] = field(default_factory=list)
    method: str = ""
    #: (low, high, cheaper policy or "equal"): for an integer parameter both ends are integers in
    #: the run; for a real one consecutive regions share their edge (a break-even)
    regions: list[tuple[float, float, str]] = field(default_factory=list)
    #: one sentence per rule between parameters that cut the range, with how to widen it
    limits: list[str] = field(default_factory=list)

    # ---- words ----------------------------------------------------------------------------------

    @property
    def unit(self) -> str:
        return registry.NUMERIC[self.parameter].unit

    def fmt(self, x: float) -> str:
        """A value of the parameter: integers as integers, others to six significant digits."""
        if self.integer or float(x).is_integer() and abs(x) < 1e15:
            return str(int(round(x)))
        return f"{x:.6g}"

    def tolerance_note(self) -> str:
        return f"'equal' means within {self.rtol:g} of the larger cost"

    def break_even_text(self) -> str:
        """The break-even values in words, without the regions: '8 CPUs', '1.5e+04 ns, 2e+04 ns', 'none'."""
        if not self.roots:
            return "none"
        return ", ".join(f"{self.fmt(r)} {self.unit}".strip() for r in self.roots)

    def crossing_text(self) -> str:
        """For an integer parameter, where the curves cross as if it were continuous ('' if not known)."""
        if not self.integer or not self.crossings:
            return ""
        return ", ".join(f"{x:.4g}" for x in self.crossings)

    def region_texts(self) -> list[str]:
        out = []
        for lo, hi, who in self.regions:
            span = self.fmt(lo) if lo == hi else f"{self.fmt(lo)} .. {self.fmt(hi)}"
            out.append(f"{span}: {'equal' if who == EQUAL else who + ' cheaper'}")
        return out

    def verdict(self) -> str:
        """The regions as one line: '0 .. 7: drain_local cheaper; 8 .. 15: drain_remote cheaper'."""
        return "; ".join(self.region_texts())

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        span = f"{self.parameter} = {self.fmt(self.low)} .. {self.fmt(self.high)}{unit}"
        if len(self.regions) == 1:
            who = self.regions[0][2]
            if who == EQUAL:
                lines = [f"{self.policy} and {self.against} cost the same over the whole range {span}"
                         f" ({self.tolerance_note()})"]
            else:
                lines = [f"{who} is cheaper over the whole range {span}; no break-even"]
        else:
            lines = [f"break-even of {self.policy} against {self.against} in {self.parameter}, over {span}"
                     f" ({self.method}; {self.tolerance_note()}):"]
            if self.integer:
                if self.roots:
                    lines.append(f"  the order changes at {self.parameter} = {self.break_even_text()}")
                if self.crossing_text():
                    lines.append(f"  (the cost curves cross at {self.parameter} ~ {self.crossing_text()}"
                                 " if it is taken as continuous)")
            elif self.roots:
                lines.append(f"  equal cost at {self.parameter} = {self.break_even_text()}")
            lines.extend(f"  {t}" for t in self.region_texts())
        lines.extend(f"note: {n}" for n in self.limits)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"policy": self.policy, "against": self.against, "parameter": self.parameter,
                "unit": self.unit, "integer": self.integer, "low": self.low, "high": self.high,
                "rtol": self.rtol, "roots": self.roots, "crossings": self.crossings, "method": self.method,
                "regions": [{"low": a, "high": b, "cheaper": w} for a, b, w in self.regions],
                "limits": self.limits}

    def row(self) -> dict:
        """One row of a break-even table (the report's): the same words as :meth:`describe`."""
        note = "; ".join([self.method, self.tolerance_note(), *self.limits])
        return {"policy": self.policy, "against": self.against, "parameter": self.parameter,
                "break_even": self.break_even_text(), "crossing": self.crossing_text(),
                "verdict": self.verdict(), "note": note}


def breakeven(values: dict, policy: str, against: str, solve_for: str,
              low: float | str | None = None, high: float | str | None = None,
              rtol: float = REL_TOL, raise_cpus: bool = False) -> BreakEven:
    """Where ``policy`` and ``against`` cost the same as ``solve_for`` moves over ``low`` ..
    ``high`` (default: its registry bounds), every other parameter at ``values``.
    ``raise_cpus`` (for ``remote_cpus``): ``cpus`` follows ``remote_cpus + 1`` where the point
    has fewer CPUs, as the charts and the decision map do, so the answer is theirs: the point's
    own cpus up to its last remote CPU, more CPUs beyond."""
    policy_or_error(policy)
    policy_or_error(against)
    if policy == against:
        raise UserError(f"--policy and --against are both {policy}; give two different policies")
    if solve_for not in registry.NUMERIC:
        if solve_for in registry.CATEGORICAL:
            raise UserError(f"--solve-for {solve_for}: a categorical parameter has no break-even; pick a numeric one")
        raise registry.unknown_parameter(solve_for)
    if not (isinstance(rtol, (int, float)) and math.isfinite(rtol) and 0 <= rtol < 1):
        raise UserError(f"--rtol {rtol!r}: give a relative tolerance from 0 up to (not including) 1")
    entry = registry.NUMERIC[solve_for]
    lo = entry.low if low is None else registry.parse_value(solve_for, low)
    hi = entry.high if high is None else registry.parse_value(solve_for, high)
    if lo > hi:
        raise UserError(f"--low {lo:g} is above --high {hi:g}; give low <= high")
    follow = bool(raise_cpus) and solve_for == "remote_cpus"
    lo, hi, limits = _feasible_range(values, solve_for, lo, hi, follow=follow)
    result = BreakEven(policy, against, solve_for, float(lo), float(hi), integer=entry.integer, rtol=float(rtol),
                       limits=limits)
    if follow and int(values["cpus"]) < hi + 1:
        result.limits.append(f"cpus follows remote_cpus + 1 beyond remote_cpus = {int(values['cpus']) - 1} "
                             f"(the point has cpus = {values['cpus']})")
    ev = _Evaluator(values, policy, against, solve_for, rtol, follow=follow)
    # a polynomial in remote_cpus with cpus fixed is not the curve once cpus follows it
    poly_roots = (None if follow and int(values["cpus"]) < hi + 1
                  else _polynomial_roots(values, policy, against, solve_for, lo, hi))
    if lo == hi:
        s = int(ev.signs(np.array([lo]))[0])
        conv = int if entry.integer else float
        result.low, result.high = conv(lo), conv(hi)
        result.regions = [(conv(lo), conv(hi), _name(s, policy, against))]
        result.roots = [float(lo)] if s == 0 and not entry.integer else []
        result.method = "one value"
        return result
    if entry.integer:
        regions, roots = _integer_runs(ev, int(lo), int(hi), policy, against)
        result.low, result.high = int(lo), int(hi)
        result.regions = [(int(a), int(b), who) for a, b, who in regions]
        result.roots = [int(r) for r in roots]
        result.method = "every integer" if hi - lo < _ALL_INTEGERS else "integer scan + bisection"
        result.crossings = (sorted(poly_roots) if poly_roots is not None
                            else _continuous_crossings(ev, result.regions))
    else:
        xs = _grid(solve_for, lo, hi)
        result.regions, scan_roots = _real_runs(ev, xs, policy, against, poly_roots)
        if poly_roots is not None:
            result.roots = sorted(set(poly_roots) | set(scan_roots))
            result.method = "sympy solve"
        else:
            result.roots = sorted(scan_roots)
            result.method = "scan + brentq"
        result.crossings = list(result.roots)
    return result


def breakeven_row(values: dict, policy: str, against: str, parameter: str,
                  low: float | None = None, high: float | None = None, rtol: float = REL_TOL,
                  raise_cpus: bool = False) -> dict:
    """A table row for one break-even question (see :meth:`BreakEven.row`); a question that has
    no answer at ``values`` (an empty range) gives its reason in ``verdict`` instead of raising."""
    try:
        return breakeven(values, policy, against, parameter, low=low, high=high, rtol=rtol,
                         raise_cpus=raise_cpus).row()
    except UserError as exc:
        return {"policy": policy, "against": against, "parameter": parameter, "break_even": "-",
                "crossing": "", "verdict": str(exc), "note": ""}


# ---- evaluation --------------------------------------------------------------------------------


def _name(sign: int, policy: str, against: str) -> str:
    return {-1: policy, 0: EQUAL, 1: against}[int(sign)]


class _Evaluator:
    """Both costs at arrays of the free parameter, and the sign of their difference."""

    def __init__(self, values, policy, against, name, rtol, follow: bool = False):
        self.values, self.policy, self.against, self.name, self.rtol = values, policy, against, name, rtol
        self.follow = follow

    def costs(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        point = dict(self.values)
        point[self.name] = np.asarray(xs, dtype=float)
        if self.follow:
            point = registry.raise_cpus(point)
        out = evaluate_arrays(point, (self.policy, self.against))
        return (np.asarray(out[(self.policy, "expected_ns")], dtype=float),
                np.asarray(out[(self.against, "expected_ns")], dtype=float))

    def difference(self, x: float) -> float:
        a, b = self.costs(np.array([x]))
        return float(a[0] - b[0])

    def signs(self, xs: np.ndarray) -> np.ndarray:
        """-1 where ``policy`` is cheaper, +1 where ``against`` is, 0 where they are equal within rtol."""
        a, b = self.costs(xs)
        d = a - b
        tol = self.rtol * np.maximum(np.abs(a), np.abs(b))
        return np.where(np.abs(d) <= tol, 0, np.sign(d)).astype(int)


def _runs(signs: np.ndarray) -> list[tuple[int, int, int]]:
    """(sign, first index, last index) of each run of equal signs."""
    runs = []
    start = 0
    for i in range(1, len(signs) + 1):
        if i == len(signs) or signs[i] != signs[start]:
            runs.append((int(signs[start]), start, i - 1))
            start = i
    return runs


def _integer_runs(ev: _Evaluator, lo: int, hi: int, policy: str, against: str):
    """Runs of integers on which the same policy is cheaper, exact; and where each new run starts."""
    if hi - lo < _ALL_INTEGERS:
        xs = np.arange(lo, hi + 1, dtype=float)
        signs = ev.signs(xs)
    else:  # sample, then find each change between two samples by bisection
        sample = np.unique(np.round(np.geomspace(max(lo, 1), hi, _SCAN_POINTS)))
        sample = np.unique(np.concatenate([[float(lo)], sample]))
        s = ev.signs(sample)
        xs_list, sign_list = [sample[0]], [s[0]]
        for i in range(1, len(sample)):
            a, b = int(sample[i - 1]), int(sample[i])
            while s[i] != sign_list[-1] and b - a > 1:  # first integer after a whose sign differs from a's
                left, right = a, b
                while right - left > 1:
                    mid = (left + right) // 2
                    if int(ev.signs(np.array([float(mid)]))[0]) == sign_list[-1]:
                        left = mid
                    else:
                        right = mid
                xs_list.append(float(right))
                sign_list.append(int(ev.signs(np.array([float(right)]))[0]))
                a = right
            xs_list.append(sample[i])
            sign_list.append(s[i])
        xs, signs = np.array(xs_list), np.array(sign_list)
    regions, roots = [], []
    runs = _runs(signs)
    for k, (sign, i, j) in enumerate(runs):
        end = xs[runs[k + 1][1]] - 1 if k + 1 < len(runs) else xs[j]
        regions.append((float(xs[i]), float(end), _name(sign, policy, against)))
        if k:
            roots.append(float(xs[i]))
    return regions, roots


def _continuous_crossings(ev: _Evaluator, regions) -> list[float]:
    """For an integer parameter whose formula is not a polynomial: where the two cost curves cross
    between the last integer of one region and the first of the next, if the formula can be
    evaluated between integers there (a finite, strict sign change); else nothing."""
    out = []
    for (_, end, a), (start, _, b) in zip(regions, regions[1:]):
        if EQUAL in (a, b):
            continue
        try:
            fa, fb = ev.difference(end), ev.difference(start)
            mid = ev.difference((end + start) / 2)
            if not all(map(math.isfinite, (fa, fb, mid))) or fa * fb >= 0:
                continue
            out.append(float(brentq(ev.difference, end, start, xtol=1e-9)))
        except (ValueError, TypeError, ZeroDivisionError, OverflowError):
            continue  # the formula has no value between the integers here
    return out


def _real_runs(ev: _Evaluator, xs: np.ndarray, policy: str, against: str, known_roots):
    """Regions of a real parameter cut at the break-evens, and the break-evens the scan shows:
    strict sign changes (refined by brentq, or a known exact root between the two points) and
    isolated grid points where the costs are equal (a break-even, not a region)."""
    runs = _runs(ev.signs(xs))
    roots: list[float] = []
    merged: list[list] = []  # [sign, low x, high x]
    touch = None  # an isolated point of equality just passed
    for s, i, j in runs:
        if s == 0 and i == j and len(runs) > 1:
            touch = float(xs[i])
            roots.append(touch)
            if merged:
                merged[-1][2] = touch
            continue
        if touch is not None:
            start, touch = touch, None
        elif merged:
            prev = merged[-1][0]
            start = _edge(ev, float(xs[i - 1]), float(xs[i]), prev, s, known_roots)
            if prev != 0 and s != 0:
                roots.append(start)
            merged[-1][2] = start
        else:
            start = float(xs[i])
        if merged and merged[-1][0] == s:  # the same policy on both sides of a touching point
            merged[-1][2] = float(xs[j])
        else:
            merged.append([s, start, float(xs[j])])
    regions = [(lo, hi, _name(s, policy, against)) for s, lo, hi in merged]
    return regions, roots


def _edge(ev: _Evaluator, a: float, b: float, sign_a: int, sign_b: int, known_roots) -> float:
    """Where the sign changes between grid points a < b."""
    for r in known_roots or ():
        if a <= r <= b:
            return float(r)
    if sign_a * sign_b < 0:
        return float(brentq(ev.difference, a, b, xtol=1e-12 * max(1.0, abs(b))))
    for _ in range(100):  # to or from equality: bisect on the sign
        mid = (a + b) / 2
        if mid in (a, b):
            break
        if int(ev.signs(np.array([mid]))[0]) == sign_a:
            a = mid
        else:
            b = mid
    return float(b)


def _grid(name, lo, hi) -> np.ndarray:
    entry = registry.NUMERIC[name]
    if entry.log_scale or (lo >= 0 and hi / max(lo, 1e-300) > 1e3):
        start = lo if lo > 0 else min(hi * 1e-9, 1e-12)
        g = np.geomspace(start, hi, _SCAN_POINTS)
        return np.unique(np.concatenate([[lo], g]))
    return np.linspace(lo, hi, _SCAN_POINTS)


def _polynomial_roots(values, policy, against, name, lo, hi):
    """Real roots in [lo, hi] when the difference is a polynomial of low degree in the free
    parameter (every other parameter fixed); None when it is not one."""
    sym = registry.S[name]
    cats = [values[n] for n in registry.CATEGORICAL]
    diff = policy_outputs(policy, *cats)["expected_ns"] - policy_outputs(against, *cats)["expected_ns"]
    if not diff.is_polynomial(sym):
        # structurally not a polynomial in it (inside a rate, an exponential, a clamp): substituting
        # the other values would only cost time (minutes for a rate inside the residency)
        return None
    subs = {registry.S[n]: sp.Float(values[n]) if not registry.NUMERIC[n].integer else sp.Integer(values[n])
            for n in NUMERIC_NAMES if n != name}
    expr = diff.xreplace(subs)
    if expr.has(Clamp):  # the free parameter sits inside a clamped probability: not a polynomial
        return None
    if expr.has(sp.Sum) or expr.has(sp.Piecewise):
        expr = sp.piecewise_fold(expr)
        if expr.has(sp.Piecewise) or expr.has(sp.Sum):
            return None
    try:
        poly = sp.Poly(sp.expand(expr), sym)
    except sp.PolynomialError:
        return None
    if poly.degree() > _MAX_POLY_DEGREE:
        return None
    if poly.is_zero:
        return []
    roots = []
    for r in sp.Poly(poly.as_expr(), sym).nroots():
        if abs(sp.im(r)) < 1e-12:
            x = float(sp.re(r))
            if lo <= x <= hi:
                roots.append(x)
    return roots


# ---- the range ---------------------------------------------------------------------------------


def _holds(values, name, xs: np.ndarray, follow: bool = False) -> np.ndarray:
    point = dict(values)
    point[name] = xs
    if follow:
        point = registry.raise_cpus(point)
    return np.broadcast_to(np.asarray(registry.feasible(point), dtype=bool), np.shape(xs))


def _feasible_range(values, name, lo, hi, notes: bool = True, follow: bool = False):
    """[lo, hi] narrowed by the rules between parameters (each is taken to allow an interval of
    the free parameter), and, with ``notes``, a sentence for each rule that cut it."""
    integer = registry.NUMERIC[name].integer
    xs = (np.arange(int(lo), int(hi) + 1, dtype=float) if integer and hi - lo < _ALL_INTEGERS
          else np.unique(np.concatenate([[lo, hi], np.linspace(lo, hi, _SCAN_POINTS)])))
    if integer:
        xs = np.unique(np.round(xs))
    ok = _holds(values, name, xs, follow)
    if not ok.any():
        bad = dict(values, **{name: lo})
        reason = next((c.message(bad) for c in registry.CONSTRAINTS if not np.all(c.holds(bad))), "")
        raise UserError(f"{name}: no value in {lo:g} .. {hi:g} is consistent with the other parameters"
                        + (f" ({reason})" if reason else ""))
    first, last = int(np.argmax(ok)), len(ok) - 1 - int(np.argmax(ok[::-1]))
    new_lo, new_hi = float(xs[first]), float(xs[last])
    if first > 0:
        new_lo = _feasible_edge(values, name, float(xs[first - 1]), new_lo, integer, follow)
    if last < len(xs) - 1:
        new_hi = _feasible_edge(values, name, float(xs[last + 1]), new_hi, integer, follow)
    limits = []
    if notes and new_lo > lo:
        limits.append(_limit_note(values, name, new_lo, lo, integer))
    if notes and new_hi < hi:
        limits.append(_limit_note(values, name, new_hi, hi, integer))
    return new_lo, new_hi, limits


def _bisect(pred, good: float, bad: float, integer: bool) -> float:
    """The value nearest ``bad`` for which ``pred`` still holds, between ``good`` (holds) and
    ``bad`` (does not); the predicate is taken to change once between them."""
    for _ in range(200):
        if integer and abs(good - bad) <= 1:
            break
        mid = (good + bad) / 2
        if integer:
            mid = float(math.floor(mid) if bad > good else math.ceil(mid))
        if mid in (good, bad):
            break
        if pred(mid):
            good = mid
        else:
            bad = mid
    return float(good)


def _feasible_edge(values, name, bad: float, good: float, integer: bool, follow: bool = False) -> float:
    return _bisect(lambda x: bool(_holds(values, name, np.array([x]), follow)[0]), good, bad, integer)


def _fmt_value(name: str, x: float) -> str:
    return str(int(x)) if registry.NUMERIC[name].integer else f"{x:.6g}"


def _limit_note(values, name, edge: float, wanted: float, integer: bool) -> str:
    """Which rule stops the search at ``edge`` short of ``wanted``, and what would widen it."""
    up = wanted > edge
    step = 1.0 if integer else max(abs(edge) * 1e-9, 1e-12)
    beyond = edge + step if up else edge - step
    bad = dict(values, **{name: int(beyond) if integer else beyond})
    head = f"{name} stops at {_fmt_value(name, edge)} here, short of {_fmt_value(name, wanted)}"
    for c in registry.CONSTRAINTS:
        if name not in c.names or np.all(c.holds(bad)):
            continue
        others = [n for n in c.names if n != name]
        return (f"{head}, because " + ", ".join(f"{o}={values[o]}" for o in others)
                + f" (at {name}={_fmt_value(name, beyond)}: {c.message(bad)}). "
                + _widen(values, name, wanted, c, others))
    return f"{head}, by the rules between parameters"


def _widen(values, name, wanted: float, c, others) -> str:
    """How to search further: the value of the rule's other parameter nearest its current one
    that lets ``name`` reach ``wanted``, or, where none in its bounds does, the one that gets
    nearest."""
    if len(others) != 1 or others[0] not in registry.NUMERIC:
        return "To search further, change " + ", ".join(others) + " with --set."
    other = registry.NUMERIC[others[0]]
    current = float(values[other.name])
    also = f"; {other.name} enters the costs too, so this moves the point"

    def reaches(v: float) -> bool:
        v = int(v) if other.integer else v
        return bool(np.all(c.holds(dict(values, **{other.name: v, name: wanted}))))

    for bound in (other.low, other.high):
        if reaches(bound):
            value = _bisect(reaches, bound, current, other.integer)
            return (f"To search to {_fmt_value(name, wanted)}, add --set {other.name}="
                    f"{_fmt_value(other.name, value)}{also}.")
    best, reach = None, None
    for bound in (other.low, other.high):
        try:
            lo, hi, _ = _feasible_range(dict(values, **{other.name: int(bound) if other.integer else bound}), name,
                                        *sorted((float(values[name]), float(wanted))), notes=False)
        except UserError:
            continue
        r = hi if wanted > float(values[name]) else lo
        if reach is None or abs(wanted - r) < abs(wanted - reach):
            best, reach = bound, r
    if best is None or best == current:
        return "To search further, change " + other.name + " with --set."
    return (f"To search further, add --set {other.name}={_fmt_value(other.name, best)} (then {name} goes to "
            f"{_fmt_value(name, reach)}){also}.")
