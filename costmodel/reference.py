"""Reference parameter sets built from published figures (not calibration: nothing here is
measured by this project). Every number comes from ``data/reference/*.csv``, each row citing its
source; the code holds only the derivations and the stated assumptions."""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from . import registry
from .calibration.fitting import N_BOOT, PRIOR_FACTOR, SEED, Estimate, FitOutcome, round_to, assumed, prior_interval
from .calibration.fitting import default_ratio
from .calibration.recipes import REUSE_SPLIT, SHOOTDOWN_PARAMS, fit_shootdown, shootdown_shape
from .errors import UserError
from .evaluate import evaluate_point
from .paramfile import REFERENCE_DIR, ParamSet, save

# ---- reference sets from published figures -------------------------------------------------
#
# Every number below the assumptions comes from data/reference/*.csv (each row cites its source,
# with its source); the code holds only the derivations and the stated assumptions.

FIGURES_CSV = "published_figures.csv"
MILAN_CURVE_CSV = "milan72_tlb_flush2.csv"


@dataclass(frozen=True)
class Figures:
    """The published figures, by key, with their citations."""

    rows: Mapping[str, Mapping]
    path: str

    def __getitem__(self, key: str) -> float:
        try:
            return float(self.rows[key]["value"])
        except KeyError:
            raise UserError(f"{self.path}: no figure {key!r}") from None

    def cite(self, *keys: str) -> str:
        cites = []
        for k in keys:
            c = str(self.rows[k]["citation"])
            if c not in cites:
                cites.append(c)
        return "; ".join(cites)


def read_figures(source_dir: str | Path = REFERENCE_DIR) -> Figures:
    path = Path(source_dir) / FIGURES_CSV
    if not path.is_file():
        raise UserError(f"{path}: the published figures are missing")
    df = pd.read_csv(path, dtype={"key": str})
    if df["key"].duplicated().any():
        raise UserError(f"{path}: key {df['key'][df['key'].duplicated()].iloc[0]!r} appears twice")
    return Figures({r["key"]: r for r in df.to_dict("records")}, str(path))


@dataclass(frozen=True)
class Assumption:
    """A value a reference set needs but no figure gives: a point and the range it is meant to cover."""

    value: float
    low: float
    high: float
    note: str


def _factor_range(value: float, note: str) -> Assumption:
    lo, hi = prior_interval(value)
    return Assumption(value, lo, hi, f"{note}; range a factor {PRIOR_FACTOR:g} either way")


def haswell_assumptions(fig: Figures) -> dict[str, Assumption]:
    """What the Haswell-guest set assumes, each with the range it is meant to cover."""
    sd_low = fig["haswell_remote_shootdown_cycles_low"] + (fig["guest_ipi_cycles_x2apic"] - fig["guest_ipi_cycles_x2apic_ipiv"])
    sd_high = fig["haswell_remote_shootdown_cycles_high"] * fig["ipi_one_to_one_total_guest"] / fig["ipi_one_to_one_total_host"]
    reuse_share = float(default_ratio(REUSE_SPLIT)[1])
    return {
        "guest_shootdown_cycles": Assumption(
            math.sqrt(sd_low * sd_high), sd_low, sd_high,
            "one remote shootdown inside the KVM guest, not published: at least the bare-metal Haswell shootdown"
            " plus the sender's VM exit (x2APIC guest IPI without minus with IPI virtualisation), at most the"
            " bare-metal shootdown scaled by the guest/host IPI cost ratio (ThunderX2); the value is the"
            " geometric midpoint"),
        "clock_ghz": Assumption(2.3, 1.6, 4.0, "clock of the Haswell host, to turn cycles into ns: not published;"
                                "Haswell parts span about 1.6-4 GHz"),
        "reuse_share": Assumption(reuse_share, reuse_share / PRIOR_FACTOR, min(1.0, reuse_share * PRIOR_FACTOR),
                                  "share of reuse_ns in the reported reuse cost: the registry defaults' ratio, a factor"
                                  f" {PRIOR_FACTOR:g} either way"),
        "alloc_ns": _factor_range(float(registry.NUMERIC["alloc_ns"].default), "registry default"),
        "free_ns": _factor_range(float(registry.NUMERIC["free_ns"].default), "registry default"),
        "copy_bandwidth_gbps": _factor_range(fig["epyc9655_copy_4k_cold_gbps"],
                                             "the cold 4 KiB copy bandwidth of a 2-socket EPYC 9655 (another machine)"),
    }


def _haswell_values(fig: Figures, a: Mapping[str, float]) -> dict[str, tuple]:
    """name -> (value, source, note) of the Haswell-guest set for one choice of the assumptions."""
    ghz = a["clock_ghz"]
    reuse_cycles = fig["haswell_guest_reuse_cycles_per_op"]
    flushes = (fig["haswell_guest_remote_flushes_per_100k_ops_copy"]
               - fig["haswell_guest_remote_flushes_per_100k_ops_reuse"]) / 1e5
    threads = int(fig["haswell_guest_threads"])
    sd_ratio = default_ratio(SHOOTDOWN_PARAMS)
    c_reuse = fig.cite("haswell_guest_reuse_cycles_per_op")
    c_sd = fig.cite("haswell_remote_shootdown_cycles_low", "guest_ipi_cycles_x2apic", "ipi_one_to_one_total_guest")
    at_clock = f"at an assumed {ghz:g} GHz"
    sum_note = (f"the whole reported reuse cost, {reuse_cycles:g} cycles/op ({c_reuse}), {at_clock}, is"
                f" fault_entry_ns + reuse_ns; split with reuse share {a['reuse_share']:.3g} (assumed)")
    sd_note = (f"one remote shootdown in the guest, {a['guest_shootdown_cycles']:.0f} cycles {at_clock}, derived from"
               f" {c_sd}; only base + per_cpu x 1 is known, split in the registry defaults' ratio (assumed)")
    v = {
        "fault_entry_ns": (reuse_cycles * (1 - a["reuse_share"]) / ghz, "published", sum_note),
        "reuse_ns": (reuse_cycles * a["reuse_share"] / ghz, "published", sum_note),
        "alloc_ns": (a["alloc_ns"], "assumed", "registry default; not published for this machine"),
        "page_bytes": (4096, "assumed", "x86-64 base page (architecture fact, no figure row)"),
        "copy_bandwidth_gbps": (a["copy_bandwidth_gbps"], "assumed",
                                f"not published for Haswell; the figure of another machine ({fig.cite('epyc9655_copy_4k_cold_gbps')})"),
        "local_flush_ns": (fig["haswell_invlpg_single_page_cycles"] / ghz, "published",
                           f"single-page INVLPG on a Haswell Xeon, {fig['haswell_invlpg_single_page_cycles']:g} cycles"
                           f" ({fig.cite('haswell_invlpg_single_page_cycles')}), {at_clock}"),
        "free_ns": (a["free_ns"], "assumed", "registry default; not published for this machine"),
        "shootdown_model": ("linear", "assumed", "one target CPU only: the shape cannot be told; registry default"),
        "shootdown_base_ns": (a["guest_shootdown_cycles"] * sd_ratio[0] / ghz, "published", sd_note),
        "shootdown_per_cpu_ns": (a["guest_shootdown_cycles"] * sd_ratio[1] / ghz, "published", sd_note),
        # the scenario of the report
        "batch_size": (15, "assumed", "PAGEVEC_SIZE before Linux 6.9 (kernel source, no figure row); both kernels compared are older"),
        "cpus": (threads, "published", f"{threads} threads in the guest ({c_reuse}); assumed one vCPU each"),
        "remote_cpus": (threads - 1, "published",
                        f"the other thread's CPU: the copy adds {flushes:.5f} remote flushes per op ({c_reuse}, derived)"),
        "gap_model": ("fixed_count", "assumed", "the WP fault follows the install fault with no other add in between"),
        "adds_between": (0, "assumed", "the WP fault follows the install fault with no other add in between"),
        "position_model": ("fixed", "assumed", "the page is still in the batch at the WP fault"),
        "batch_position": (0, "published", f"with the copy, {flushes:.5f} extra remote flushes per op ({c_reuse}, derived):"
                           " nearly every WP fault copied, so the page was always still in a batch"),
        "p_exclusive": (0.0, "assumed", "no exclusive marker in v5.8 or 5.13 (PageAnonExclusive came in 5.19)"),
        "p_large_folio": (0.0, "assumed", "swapped-in pages are small"),
    }
    for name in ("drain_base_ns", "drain_per_folio_ns", "remote_drain_ns", "drain_all_base_ns", "drain_all_per_cpu_ns"):
        v[name] = (float(registry.NUMERIC[name].default), "assumed",
                   f"not used by the policies compared here; registry default (basis: {registry.NUMERIC[name].source})")
    return v


def _set_from_corners(build: Callable[[Mapping[str, float]], dict], assumptions: Mapping[str, Assumption]
                      ) -> dict[str, Estimate]:
    """Values at the assumptions' points; each numeric interval spans the values over every
    corner of the assumptions' ranges (what the assumptions allow, not a measurement)."""
    point = build({k: a.value for k, a in assumptions.items()})
    corners = [build(dict(zip(assumptions, c)))
               for c in itertools.product(*[(a.low, a.high) for a in assumptions.values()])]
    out = {}
    for name, (value, source, note) in point.items():
        if isinstance(value, str):
            out[name] = Estimate(value, source, note)
            continue
        vals = [c[name][0] for c in corners] + [value]
        lo, hi = min(vals), max(vals)
        if lo == hi == value and source == "assumed" and name in registry.NUMERIC and not registry.NUMERIC[name].integer \
                and registry.NUMERIC[name].kind == registry.MACHINE:
            lo, hi = prior_interval(value)
            note += f"; interval: a factor {PRIOR_FACTOR:g} either way (a stated range, not a measurement)"
        elif lo == hi:
            lo = hi = None
        else:
            note += "; interval: the range the stated assumptions allow"
        out[name] = Estimate(value, source, note, lo, hi)
    return out


def _entries(ests: Mapping[str, Estimate]) -> dict:
    """The file entries of a reference set: its estimates, and every machine parameter the
    published figures do not give, assumed (registry default and range)."""
    full = dict(ests)
    for name, spec in registry.PARAMS.items():
        if spec.kind == registry.MACHINE and name not in full:
            full[name] = assumed(name, "the published figures do not give it")
    return {n: e.entry(n) for n, e in full.items()}


def _ratio(values: Mapping[str, object], num: str, den: str) -> float:
    point = registry.as_point(values)
    res = evaluate_point(point, [num, den])
    return res[num]["expected_ns"] / res[den]["expected_ns"]


def haswell_ratio_check(source_dir: str | Path = REFERENCE_DIR) -> dict:
    """The model's reuse-vs-copy cost ratio with the Haswell-guest set (``copy_if_referenced``
    over ``mapcount``) against the reported one, and how far each assumption moves it."""
    fig = read_figures(source_dir)
    assumptions = haswell_assumptions(fig)

    def ratio(a):
        return _ratio({n: v[0] for n, v in _haswell_values(fig, a).items()}, "copy_if_referenced", "mapcount")

    point = {k: a.value for k, a in assumptions.items()}
    model = ratio(point)
    swings = {}
    for k, a in assumptions.items():
        swings[k] = (ratio({**point, k: a.low}), ratio({**point, k: a.high}))
    corners = [ratio(dict(zip(assumptions, c)))
               for c in itertools.product(*[(a.low, a.high) for a in assumptions.values()])]
    reported = fig["haswell_guest_copy_cycles_per_op"] / fig["haswell_guest_reuse_cycles_per_op"]
    dominant = max(swings, key=lambda k: abs(swings[k][1] - swings[k][0]))
    return {"reported": reported, "model": model, "relative_error": model / reported - 1,
            "low": min(corners), "high": max(corners), "within": min(corners) <= reported <= max(corners),
            "swings": swings, "dominant": dominant}


def haswell_guest_set(source_dir: str | Path = REFERENCE_DIR) -> ParamSet:
    fig = read_figures(source_dir)
    assumptions = haswell_assumptions(fig)
    ests = _set_from_corners(lambda a: _haswell_values(fig, a), assumptions)
    check = haswell_ratio_check(source_dir)
    dom = assumptions[check["dominant"]]
    summary = (f"copy_if_referenced / mapcount = {check['model']:.2f} against the reported {check['reported']:.2f}"
               f" ({check['relative_error']:+.0%}); the stated assumptions allow {check['low']:.2f} to {check['high']:.2f};"
               f" the dominant assumption is {check['dominant']} (alone it moves the ratio from"
               f" {min(check['swings'][check['dominant']]):.2f} to {max(check['swings'][check['dominant']]):.2f})")
    record = {
        "name": "reuse_vs_copy_ratio",
        "method": "model evaluation at the set's values; the range is the minimum and maximum over every corner of"
                  " the assumptions' ranges; swings move one assumption at a time",
        "parameters": [],
        "n_points": 1,
        "residuals": [{"reported_ratio": round_to(check["reported"]), "model_ratio": round_to(check["model"]),
                       "relative_error": round_to(check["relative_error"], 3)}],
        "range": [round_to(check["low"]), round_to(check["high"])],
        "swings": {k: [round_to(lo), round_to(hi)] for k, (lo, hi) in check["swings"].items()},
        "assumptions": {k: {"value": round_to(a.value), "low": round_to(a.low), "high": round_to(a.high), "note": a.note}
                        for k, a in assumptions.items()},
        "note": summary + f"; {check['dominant']}: {dom.note}",
    }
    return ParamSet(
        name="haswell-kvm-guest",
        description=("The KVM guest on Haswell of the original report (Nadav Amit, linux-mm, 2021-11-10), with its"
                     " scenario: two threads, the page still in the batch at every WP fault. " + summary + "."),
        parameters=_entries(ests),
        fit=[record],
        provenance={"machine": "KVM guest on Haswell", "kernels": "v5.8 (reuse) and 5.13-era mainline (copy)",
                    "source": fig.cite("haswell_guest_reuse_cycles_per_op"), "data": f"data/reference/{FIGURES_CSV}"},
    )


def read_milan_curve(source_dir: str | Path = REFERENCE_DIR) -> pd.DataFrame:
    path = Path(source_dir) / MILAN_CURVE_CSV
    if not path.is_file():
        raise UserError(f"{path}: the Milan tlb_flush2 curve is missing")
    df = pd.read_csv(path)
    for col in ("flush", "threads", "ops_per_s", "citation"):
        if col not in df.columns:
            raise UserError(f"{path}: column {col!r} is missing")
    return df


def milan_shootdown_fit(source_dir: str | Path = REFERENCE_DIR, n_boot: int = N_BOOT) -> dict:
    """Shootdown cost on the 72-CPU Milan from will-it-scale tlb_flush2_threads.

    Each op of tlb_flush2 writes one page and MADV_DONTNEEDs it, so it flushes one page on every
    CPU running a sibling thread. With n threads, the CPU time per op is T(n) = n / (ops/s). It
    holds work W, contention C(n) that grows with threads, and the flush F(n-1). Contention is
    common to both kernels, so the difference D(n) = T_ipi(n) - T_invlpgb(n) = F_ipi(n-1) -
    F_invlpgb(n-1) is what the two curves identify: with a broadcast flush of constant cost b, the
    IPI shootdown's shape and per-CPU cost, and its base less b. The broadcast cost b itself is
    bounded by the curve: C(n) >= 0 gives b <= min over n >= 2 of T_invlpgb(n) - T_invlpgb(1).
    A throughput includes the IPI handling on the target CPUs, so the per-CPU cost is the system's
    CPU time per target, not only the initiator's wait.
    """
    df = read_milan_curve(source_dir)
    t = {}
    for flush in ("ipi", "invlpgb"):
        part = df[df["flush"] == flush].sort_values("threads")
        t[flush] = pd.Series(part["threads"].to_numpy(float) / part["ops_per_s"].to_numpy(float) * 1e6,
                             index=part["threads"].to_numpy(int))  # us per op per thread
    threads = sorted(set(t["ipi"].index) & set(t["invlpgb"].index))
    n = np.array([x for x in threads if x >= 2], float)
    d = np.array([t["ipi"][int(x)] - t["invlpgb"][int(x)] for x in n])
    rng = np.random.default_rng([SEED, 100])
    fit = fit_shootdown(n - 1, d, None, rng=rng, n_boot=n_boot, unit_scale=1000.0,
                        data="tlb_flush2: per-op CPU time with IPI flush minus with INVLPGB, threads - 1 targets")
    bcast = t["invlpgb"]
    growth = {int(x): bcast[int(x)] - bcast[1] for x in threads if x >= 2}
    at = min(growth, key=growth.get)
    bound_ns = max(growth[at], 0.0) * 1000.0
    fig = read_figures(source_dir)
    n36 = 36.0
    d36 = (n36 / fig["milan36_tlb_flush2_ops_ipi_no_drain"] - n36 / fig["milan36_tlb_flush2_ops_invlpgb_no_drain"]) * 1e9
    model, npar = shootdown_shape(fit.estimates["shootdown_model"].value)
    p = [fit.estimates["shootdown_base_ns"].value, fit.estimates["shootdown_per_cpu_ns"].value]
    pred36 = float(model(np.array(p), np.array([n36 - 1]))[0])
    return {"fit": fit, "broadcast_bound_ns": bound_ns, "bound_threads": at, "citation": str(df["citation"].iloc[0]),
            "check36": {"observed_ns": d36, "predicted_ns": pred36, "citation": fig.cite("milan36_tlb_flush2_ops_ipi_no_drain")}}


def _milan_common(fig: Figures, cite: str) -> dict[str, Estimate]:
    out = {}
    for name in ("fault_entry_ns", "reuse_ns", "alloc_ns", "free_ns", "drain_base_ns", "drain_per_folio_ns",
                 "remote_drain_ns", "drain_all_base_ns", "drain_all_per_cpu_ns"):
        out[name] = assumed(name, "not in the published figures for this machine")
    out["copy_bandwidth_gbps"] = assumed("copy_bandwidth_gbps", "not published for Milan")
    out["local_flush_ns"] = Estimate(fig["x86_single_flush_ns"], "published",
                                     f"x86 in general, not Milan in particular: {fig.cite('x86_single_flush_ns')}")
    out["page_bytes"] = Estimate(4096, "assumed", "x86-64 base page (architecture fact, no figure row)")
    out["batch_size"] = Estimate(31, "assumed", "PAGEVEC_SIZE 31 since Linux 6.9 (kernel source, no figure row); the series is for 6.15")
    out["cpus"] = Estimate(int(fig["milan_cpus"]), "published", f"72-CPU AMD Milan ({fig.cite('milan_cpus')})")
    return out


def milan_sets(source_dir: str | Path = REFERENCE_DIR) -> list[ParamSet]:
    """The 72-CPU Milan with IPI shootdowns and with INVLPGB broadcast flushes."""
    fig = read_figures(source_dir)
    m = milan_shootdown_fit(source_dir)
    fit: FitOutcome = m["fit"]
    cite = m["citation"]
    bound = m["broadcast_bound_ns"]
    b_note = (f"INVLPGB flush cost per op: the curve bounds it to 0..{bound:.4g} ns (the rise of the INVLPGB per-op time"
              f" from 1 to {m['bound_threads']} threads, contention being >= 0; {cite}); the value is the middle of"
              " that bound (assumed)")
    c36 = m["check36"]
    check = (f"at 36 threads the fit gives {c36['predicted_ns']:.4g} ns between the two flushes; the 36-core figures"
             f" without lru_add_drain give {c36['observed_ns']:.4g} ns ({c36['citation']})")
    bounds_record = {"name": "broadcast_flush_bound", "method": "minimum over n >= 2 of T_invlpgb(n) - T_invlpgb(1)",
                     "parameters": ["shootdown_base_ns"], "n_points": 7, "residuals": [],
                     "bound_ns": round_to(bound), "at_threads": m["bound_threads"], "note": b_note}
    fit_record = dict(fit.record)
    fit_record["note"] = ("per-op CPU time T(n) = threads / (ops/s); D(n) = T_ipi(n) - T_invlpgb(n) for n >= 2 against"
                          " n - 1 target CPUs (contention common to both kernels cancels); " + check)
    sets = []

    ipi = _milan_common(fig, cite)
    shape = fit.estimates["shootdown_model"]
    ipi["shootdown_model"] = Estimate(shape.value, "published", f"{shape.note}, on the difference of the two curves ({cite})")
    per = fit.estimates["shootdown_per_cpu_ns"]
    ipi["shootdown_per_cpu_ns"] = Estimate(per.value, "published" if per.source == "measured" else per.source,
                                           f"fitted to the difference of the IPI and INVLPGB curves ({cite}); includes"
                                           " the IPI handling on each target (a throughput)", per.ci_low, per.ci_high)
    base = fit.estimates["shootdown_base_ns"]
    ipi["shootdown_base_ns"] = Estimate(
        max(base.value + bound / 2, 0.0), "published",
        f"fitted intercept {base.value:.4g} ns of the difference of the curves ({cite}) plus the INVLPGB flush"
        f" cost {bound / 2:.4g} ns it is measured against ({b_note}); interval: the fit's plus the bound's",
        max(base.ci_low + 0.0, 0.0), base.ci_high + bound)
    sets.append(ParamSet(
        name="milan72-ipi",
        description=("72-CPU AMD Milan, TLB shootdown by IPI, fitted to will-it-scale tlb_flush2_threads (Rik van Riel,"
                     f" INVLPGB series, kernel 6.15): {shape.value} shape, {per.value:.4g} ns per target CPU; " + check
                     + ". Parameters the series does not give are assumed."),
        parameters=_entries(ipi),
        fit=[fit_record, bounds_record],
        provenance={"machine": "72-CPU AMD Milan", "kernel": "6.15 INVLPGB series, IPI flush", "source": cite,
                    "data": f"data/reference/{MILAN_CURVE_CSV}"}))

    bc = _milan_common(fig, cite)
    bc["shootdown_model"] = Estimate("broadcast", "assumed",
                                     "INVLPGB flushes every CPU with one broadcast, whatever the number of targets; the"
                                     " curve cannot show the shape because contention grows with threads")
    bc["shootdown_base_ns"] = Estimate(bound / 2, "published", b_note, 0.0, bound)
    bc["shootdown_per_cpu_ns"] = Estimate(0.0, "assumed", "0: the broadcast shape has no per-CPU term")
    sets.append(ParamSet(
        name="milan72-invlpgb",
        description=("72-CPU AMD Milan, TLB flush by INVLPGB broadcast (Rik van Riel, INVLPGB series, kernel 6.15):"
                     f" broadcast shape, flush cost bounded by the tlb_flush2_threads curve to 0..{bound:.4g} ns."
                     " Parameters the series does not give are assumed."),
        parameters=_entries(bc),
        fit=[bounds_record],
        provenance={"machine": "72-CPU AMD Milan", "kernel": "6.15 INVLPGB series, INVLPGB flush", "source": cite,
                    "data": f"data/reference/{MILAN_CURVE_CSV}"}))
    return sets


def reference_sets(source_dir: str | Path = REFERENCE_DIR) -> list[ParamSet]:
    """Every reference parameter set, built from the CSVs of ``source_dir``."""
    return [haswell_guest_set(source_dir), *milan_sets(source_dir)]


def build_reference_sets(out_dir: str | Path = REFERENCE_DIR, source_dir: str | Path | None = None,
                         force: bool = False) -> list[Path]:
    """Regenerate every reference parameter set from the CSVs of ``source_dir``."""
    source_dir = Path(source_dir) if source_dir is not None else Path(out_dir)
    if source_dir == Path(out_dir) and not (source_dir / FIGURES_CSV).is_file():
        source_dir = REFERENCE_DIR
    sets = reference_sets(source_dir)
    return [save(ps, Path(out_dir) / f"{ps.name}.json", force=force) for ps in sets]


def main(argv: list[str] | None = None) -> int:
    """``python -m costmodel.reference build-reference [OUT_DIR]``: rewrite every reference set."""
    parser = argparse.ArgumentParser(prog="python -m costmodel.reference",
                                     description="regenerate the reference parameter sets from their CSVs")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-reference", help="rewrite every reference set (replacing the files)")
    build.add_argument("out_dir", nargs="?", default=str(REFERENCE_DIR), metavar="OUT_DIR",
                       help=f"where to write them (default: {REFERENCE_DIR})")
    args = parser.parse_args(argv)
    try:
        if not Path(args.out_dir).is_dir():
            raise UserError(f"OUT_DIR {args.out_dir}: no such directory; create it or give an existing one")
        for p in build_reference_sets(args.out_dir, force=True):
            print(f"wrote {p}")
    except UserError as exc:
        print(f"python -m costmodel.reference: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    raise SystemExit(main())
