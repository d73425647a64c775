"""What the 2026 proposals change: the proposed policies beside the kernel's, at one point.

The content behind ``costmodel eval --proposals``, the report's section "What the 2026 proposals
change" and the explorer's comparison: a table (drains saved and copies changed per WP fault, ns per
WP fault and CPU time per second with intervals, P(cheapest)), two decision maps (over
``p_same_cpu`` x ``p_other_ref``, and over ``remote_cpus`` x the holder's state) and one paragraph
with its figures. Everything is computed from the model (:mod:`costmodel.evaluate`) and the
parameters' intervals (:mod:`costmodel.uncertainty`); nothing here restates a formula.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import sympy as sp

from . import registry, uncertainty
from .breakeven import breakeven
from .evaluate import evaluate_arrays
from .model import costs
from .model.numeric import lambdify
from .model.policies import POLICIES, PROPOSALS
from .model.residency import held_batch_fill, residency
from .textfmt import format_ns

#: the kernel's policy since 5.18, against which every proposal is measured
KERNEL = "drain_local"
#: compared: the kernel's, the proposals, and the queued remote drain they would replace
COMPARED: tuple[str, ...] = (KERNEL, *PROPOSALS, "drain_remote")
#: the holder's states of the remote-drain map: (label, p_holder_busy, p_holder_rt)
HOLDER_STATES = (("idle", 0.0, 0.0), ("busy", 1.0, 0.0), ("real-time", 0.0, 1.0))
DRAWS = 2000


@dataclass
class Comparison:
    """The table and the propagation behind it."""

    table: pd.DataFrame
    propagation: object   # uncertainty.Propagation
    values: registry.Point


def compare(values: Mapping[str, object], paramset=None, *, draws: int = DRAWS, seed: int = 0,
            policies: Sequence[str] = COMPARED) -> Comparison:
    """One row per policy: what it saves and changes against the kernel's per WP fault, what it
    costs (ns per WP fault, CPU us per second) with 95 % intervals over the parameters' intervals,
    the paired saving against the kernel's with its interval, and P(cheapest) among ``policies``."""
    values = registry.as_point(values)
    prop = uncertainty.propagate(values, policies=policies, draws=draws, seed=seed, paramset=paramset)
    out = prop.outputs
    k = out[KERNEL]
    q = (1 - prop.confidence) / 2
    rows = []
    for p in policies:
        o = out[p]
        saved = prop.samples[KERNEL] - prop.samples[p]
        lo, hi = (float(x) for x in np.quantile(saved, [q, 1 - q]))
        pol = POLICIES[p]
        rows.append({
            "policy": p,
            "status": "proposed" if pol.proposed else pol.kernels,
            "local_drains_saved": k["p_local_drain"]["value"] - o["p_local_drain"]["value"],
            "remote_drains": o["p_remote_drain"]["value"] + o["p_drain_all"]["value"],
            "copies_changed": o["p_copy"]["value"] - k["p_copy"]["value"],
            "p_unnecessary_copy": o["p_unnecessary_copy"]["value"],
            "expected_ns": o["expected_ns"]["value"], "expected_low_ns": o["expected_ns"]["low"],
            "expected_high_ns": o["expected_ns"]["high"],
            "saved_ns": k["expected_ns"]["value"] - o["expected_ns"]["value"], "saved_low_ns": lo, "saved_high_ns": hi,
            "cpu_us_per_s": o["cpu_us_per_s"]["value"], "cpu_low_us_per_s": o["cpu_us_per_s"]["low"],
            "cpu_high_us_per_s": o["cpu_us_per_s"]["high"],
            "p_cheapest": prop.p_cheapest.get(p, float("nan")),
            "source": pol.source,
        })
    return Comparison(pd.DataFrame(rows), prop, values)


def lock_drain_ns(values: Mapping[str, object]) -> tuple[float, float]:
    """(a drain of the holder's batch by its lock, the queued drain of that CPU) in ns, per drain,
    at ``values``: the model's prices (the lock path moves the batch's mean fill while it holds the
    page; the queued one is the mean over the holder's state)."""
    v = registry.as_point(values)
    whole = {n: (int(x) if registry.NUMERIC[n].integer else float(x)) for n, x in v.items() if n in registry.NUMERIC}

    def num(expr):
        syms = sorted(expr.free_symbols, key=str)
        return float(lambdify(syms, expr)(*(whole[s.name] for s in syms)))

    R = num(residency(v["gap_model"], v["position_model"]))
    fill = num(held_batch_fill(v["gap_model"], v["position_model"])) / R if R > 0 else 0.0
    return num(costs.remote_drain_lock_ns(sp.Float(fill))), num(costs.remote_drain_ns())


def decision_map(values: Mapping[str, object], x: str = "p_same_cpu", y: str = "p_other_ref", n: int = 21,
                 policies: Sequence[str] = COMPARED) -> pd.DataFrame:
    """The cheapest of ``policies`` over an ``n`` x ``n`` grid of two probabilities: one row per
    cell with both values, ``cheapest``, its cost and the margin to the runner-up (ns)."""
    v = registry.as_point(values)
    xs, ys = np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(xs, ys)
    grid = dict(v, **{x: X.ravel(), y: Y.ravel()})
    return _cheapest(grid, policies, {x: X.ravel(), y: Y.ravel()})


def holder_map(values: Mapping[str, object], remote_cpus: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256),
               policies: Sequence[str] = COMPARED) -> pd.DataFrame:
    """The cheapest of ``policies`` over ``remote_cpus`` x the holder's state (idle, busy, real-time):
    one row per cell (``cpus`` raised where the CPUs in the mm need more)."""
    v = registry.as_point(values)
    frames = []
    for label, busy, rt in HOLDER_STATES:
        r = np.asarray(remote_cpus, dtype=float)
        grid = registry.raise_cpus(dict(v, remote_cpus=r, p_holder_busy=busy, p_holder_rt=rt))
        frame = _cheapest(grid, policies, {"remote_cpus": r.astype(int)})
        frame.insert(1, "holder", label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _cheapest(grid: Mapping[str, object], policies: Sequence[str], axes: Mapping[str, np.ndarray]) -> pd.DataFrame:
    out = evaluate_arrays(grid, policies)
    size = len(next(iter(axes.values())))
    costs = np.stack([np.broadcast_to(out[(p, "expected_ns")], (size,)) for p in policies])
    order = np.argsort(costs, axis=0, kind="stable")
    best, second = order[0], order[1]
    idx = np.arange(size)
    frame = pd.DataFrame(dict(axes))
    frame["cheapest"] = np.asarray(policies)[best]
    frame["cheapest_ns"] = costs[best, idx]
    frame["runner_up"] = np.asarray(policies)[second]
    frame["margin_ns"] = costs[second, idx] - costs[best, idx]
    return frame


def _break_even(values, policy: str, against: str, name: str) -> float | None:
    """Where ``policy`` and ``against`` cost the same as ``name`` moves (the first root), or None."""
    roots = breakeven(values, policy, against, name).roots
    return float(roots[0]) if len(roots) else None


def _ns(x: float) -> str:
    return format_ns(x)


def _share(cells: pd.DataFrame, policy: str) -> float:
    return float((cells["cheapest"] == policy).mean())


#: the machine costs the lock-based drain is built from (besides the local drain's base)
LOCK_PARTS = ("cacheline_transfer_ns", "drain_per_remote_folio_ns")


def lock_basis(paramset=None) -> str:
    """Whether the lock path's parts are measured or assumed in ``paramset`` (registry defaults
    without one)."""
    if paramset is None:
        return "its parts at their assumed registry defaults"
    origins = {n: getattr(paramset.parameters.get(n), "source", "assumed") for n in LOCK_PARTS}
    if all(o == "measured" for o in origins.values()):
        return "its parts measured (lock_transfer probe)"
    return "its parts " + ", ".join(f"{n} {o}" for n, o in origins.items())


def paragraph(c: Comparison, same_other: pd.DataFrame, holders: pd.DataFrame, paramset=None) -> str:
    """The section's paragraph, every figure from the comparison and the two maps."""
    t = c.table.set_index("policy")
    v = c.values
    k = t.loc[KERNEL]
    lock, queued = lock_drain_ns(v)

    def row(p):
        r = t.loc[p]
        copies = ("the same copies" if abs(r.copies_changed) < 5e-5
                  else f"{abs(r.copies_changed) * 100:.1f} {'fewer' if r.copies_changed < 0 else 'more'} copies")
        return (f"{_ns(r.expected_ns)} per WP fault [{_ns(r.expected_low_ns)}, {_ns(r.expected_high_ns)}], "
                f"{r.local_drains_saved * 100:.1f} fewer local drains and {copies} per 100 WP faults than the "
                f"kernel's, P(cheapest) {r.p_cheapest:.0%}")

    best_here = max(t.index, key=lambda p: t.loc[p, "p_cheapest"])
    line_limit = _break_even(v, "drain_remote_lock", KERNEL, "cacheline_transfer_ns")
    limit_words = (f"; it and drain_local cost the same at a line transfer of {_ns(line_limit)} "
                   f"(here {_ns(v['cacheline_transfer_ns'])})" if line_limit is not None else "")
    queued_share = _share(holders, "drain_remote")
    queued_words = ("the queued drain never wins" if queued_share == 0
                    else f"the queued drain in {queued_share:.0%}")
    rt_cells = holders[holders["holder"] == "real-time"]
    return (
        f"At this point ({v['remote_cpus']} other CPUs in the mm, p_same_cpu {v['p_same_cpu']:g}, "
        f"p_other_ref {v['p_other_ref']:g}) the kernel's drain_local costs {_ns(k.expected_ns)} per WP fault "
        f"[{_ns(k.expected_low_ns)}, {_ns(k.expected_high_ns)}]. "
        f"Skipping a drain that cannot help (Barry Song's RFC, drain_local_sole_ref): {row('drain_local_sole_ref')}; "
        f"it only removes drains where another reference forces the copy anyway, so it saves most where p_other_ref "
        f"is high and never changes a copy. "
        f"Draining only the folio's own batch (Shakeel Butt, drain_local_if_here): {row('drain_local_if_here')}; "
        f"taking just the folio out (remove_folio_local): {row('remove_folio_local')}; both copy exactly as "
        f"drain_local does and save the useless local drains of WP faults on another CPU than the holder's. "
        f"Draining the holder's batch by its lock (PW locks, drain_remote_lock) removes every unnecessary copy, as "
        f"the queued remote drain does, at {_ns(lock)} per drain instead of {_ns(queued)} (derived: no kernel has "
        f"the path; {lock_basis(paramset)}): {row('drain_remote_lock')}{limit_words}. "
        f"Over p_same_cpu x p_other_ref the cheapest is "
        + ", ".join(f"{p} in {_share(same_other, p):.0%}" for p in dict.fromkeys(same_other["cheapest"]))
        + " of the map; over the CPUs in the mm and the holder's state, the lock-based drain is cheapest in "
        f"{_share(holders, 'drain_remote_lock') + _share(holders, 'drain_holder_sole_ref'):.0%} of the cells "
        f"(real-time holder: {_share(rt_cells, 'drain_remote_lock') + _share(rt_cells, 'drain_holder_sole_ref'):.0%}"
        f"), {queued_words}. Most likely cheapest here: {best_here}."
    )


def table_rows(c: Comparison) -> list[dict]:
    """The comparison as display rows (formatted)."""
    rows = []
    for r in c.table.itertuples():
        rows.append({
            "policy": r.policy, "status": r.status,
            "local drains saved /100 WP": f"{r.local_drains_saved * 100:+.2f}",
            "remote drains /100 WP": f"{r.remote_drains * 100:.2f}",
            "copies changed /100 WP": f"{r.copies_changed * 100:+.2f}",
            "ns per WP fault [95%]": f"{_ns(r.expected_ns)} [{_ns(r.expected_low_ns)}, {_ns(r.expected_high_ns)}]",
            "saved against drain_local [95%]": f"{_ns(r.saved_ns)} [{_ns(r.saved_low_ns)}, {_ns(r.saved_high_ns)}]",
            "CPU us/s [95%]": f"{r.cpu_us_per_s:,.0f} [{r.cpu_low_us_per_s:,.0f}, {r.cpu_high_us_per_s:,.0f}]",
            "P(cheapest)": f"{r.p_cheapest:.1%}",
        })
    return rows


def text_table(c: Comparison) -> str:
    """The comparison as a plain-text table (for the command line)."""
    rows = table_rows(c)
    cols = list(rows[0])
    widths = {col: max(len(col), *(len(r[col]) for r in rows)) for col in cols}
    lines = ["  ".join(col.ljust(widths[col]) for col in cols), "  ".join("-" * widths[col] for col in cols)]
    lines += ["  ".join(r[col].ljust(widths[col]) for col in cols) for r in rows]
    return "\n".join(lines)


def report_section(values: Mapping[str, object], paramset=None, *, draws: int = DRAWS, seed: int = 0,
                   table_html=None) -> list[str]:
    """The report's section "What the 2026 proposals change": heading, paragraph, table, and the
    two maps as small tables of where each policy is cheapest. ``table_html(rows)`` renders rows
    (the report's own table function); without it a plain HTML table."""
    c = compare(values, paramset, draws=draws, seed=seed)
    same_other = decision_map(values)
    holders = holder_map(values)
    render = table_html or _plain_table
    wins = (same_other.groupby("cheapest").size() / len(same_other)).sort_values(ascending=False)
    table = holders.pivot(index="remote_cpus", columns="holder", values="cheapest")
    holder_rows = [{"other CPUs in the mm": int(r), **{f"holder {h}": table.loc[r, h] for h, _, _ in HOLDER_STATES}}
                   for r in table.index]
    return [
        "<h2>What the 2026 proposals change</h2>",
        f"<p class='proposals'>{html.escape(paragraph(c, same_other, holders, paramset))}</p>",
        render(table_rows(c)),
        "<p>Where each is cheapest over p_same_cpu x p_other_ref (21 x 21 cells, the rest held at this point):</p>",
        render([{"policy": p, "share of the map": f"{s:.0%}"} for p, s in wins.items()]),
        "<p>The cheapest by the CPUs running the mm and the state of the CPU whose batch holds the page:</p>",
        render(holder_rows),
        f"<p class='note'>{html.escape(c.propagation.summary())}. Proposed policies name their source in "
        "<code>costmodel policies</code>. No Linux release has the lock-based drain or the removal of one folio: "
        f"the first is priced from the line transfer and the remote per-folio cost ({html.escape(lock_basis(paramset))}),"
        " the second as a local drain that moves one folio. Ties (where no policy drains) go to the first listed.</p>",
    ]


def _plain_table(rows: Sequence[Mapping[str, object]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
