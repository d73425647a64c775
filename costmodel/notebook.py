"""What the notebooks display, and how it survives a static copy.

A notebook converted to HTML (``jupyter nbconvert --to html``) and opened without a kernel or a
network draws no widget: the widget manager and MathJax are fetched from the network. So every
chart here is shown twice over, and only one copy is ever seen:

- :func:`show` displays the interactive chart (the explorer's chart widget, its JavaScript from
  vl-convert-python, so nothing is fetched) and, in a separate output, a static image of the
  same chart rendered by vl-convert (:func:`static_html`). A style rule hides the image in any
  notebook cell where a live chart has drawn (``.vega-embed``): in Jupyter the reader sees the
  interactive chart, in a static copy the image. Without anywidget only the image bundle is
  shown (:class:`StaticChart`, with the Vega-Lite spec beside it for frontends that draw it).
- Equations come as plain text (:mod:`costmodel.readable`, sympy's Unicode printer) with their
  LaTeX in a collapsible block (:func:`equations_html`), readable without MathJax.
- Tables are shown whole, numbers without exponents where a reader would not write one, whole
  numbers without decimals (:func:`table`, :func:`facts`).

The module also holds the few statements the notebooks make in words, each derived from the
data (:func:`swap_answer`, :func:`simulation_outside`). Charts live with the others
(:mod:`costmodel.charts`, their data in :mod:`costmodel.chartdata`).
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import math
import struct
from pathlib import Path
from typing import Mapping, Sequence

import altair as alt
import altair.vegalite.v6.display as vl_display
import numpy as np
import pandas as pd
import vl_convert as vlc
from IPython.display import HTML, display

from . import paramfile, prediction, readable, registry, validate
from .charts import VL_VERSION
from .errors import UserError
from .paramfile import diff_many
from .presets import WORKLOAD_PRESETS
from .vegawidget import vega_widget_class

#: device pixels per CSS pixel of the static images (sharp on high-density screens)
PNG_SCALE = 2.0
#: class of every static fallback; a cell with a drawn live chart hides it
STATIC_CLASS = "costmodel-static"
#: the rule that hides static images where live charts drew (JupyterLab and nbconvert's lab
#: template wrap each cell in .jp-Cell; the classic template in .cell)
HIDE_RULE = (f".jp-Cell:has(.vega-embed) .{STATIC_CLASS}, .cell:has(.vega-embed) .{STATIC_CLASS} "
             "{ display: none; }")


def live_chart_class():
    """The widget that draws a live chart (the explorer's, :func:`costmodel.widgets.LiveChart`:
    vega-embed bundled by vl-convert, nothing fetched), or None without ipywidgets/anywidget."""
    if importlib.util.find_spec("anywidget") is None or importlib.util.find_spec("ipywidgets") is None:
        return None
    return vega_widget_class()


def setup() -> str:
    """Charts without the network: lifts altair's row limit and makes a chart left bare at the
    end of a cell a static bundle (image + spec), so that it too shows in a static copy; charts
    shown with :func:`show` are live where widgets run. Returns what live charts use."""
    alt.data_transformers.disable_max_rows()
    alt.renderers.register("costmodel-static", lambda spec, **_: StaticChart(spec)._repr_mimebundle_()[0])
    alt.renderers.enable("costmodel-static")
    if live_chart_class() is None:
        return "static images (anywidget is not installed)"
    return "live charts (vega-embed from vl-convert), static images for copies without widgets"


# ---- static images of charts -------------------------------------------------------------------


def _spec(chart) -> dict:
    if isinstance(chart, dict):
        return chart
    with alt.data_transformers.disable_max_rows():
        return chart.to_dict()


def chart_title(chart) -> str:
    """The chart's title (text only), for an image's alternative text."""
    t = _spec(chart).get("title", "")
    if isinstance(t, dict):
        t = t.get("text", "")
    if isinstance(t, list):
        t = " ".join(map(str, t))
    return str(t) or "chart"


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from the PNG header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", png[16:24])


def render_png(chart, scale: float = PNG_SCALE) -> tuple[bytes, int, int]:
    """The chart drawn by vl-convert (no browser, no network): PNG bytes and its size in CSS
    pixels."""
    png = vlc.vegalite_to_png(_spec(chart), vl_version=VL_VERSION, scale=scale)
    w, h = png_size(png)
    return png, int(round(w / scale)), int(round(h / scale))


def _img(chart) -> str:
    png, w, h = render_png(chart)
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    return (f'<img src="{src}" width="{w}" height="{h}" alt="{html.escape(chart_title(chart))}" '
            f'style="max-width:100%;height:auto">')


def static_html(charts: Sequence, note: str = "", after: str = "") -> str:
    """Static images of ``charts`` in a block that a live chart in the same cell hides (see the
    module docstring), with an optional note (HTML) above them and more markup after them."""
    parts = [f"<style>{HIDE_RULE}</style>", f'<div class="{STATIC_CLASS}">']
    if note:
        parts.append(f'<p style="color:#555;font-size:90%">{note}</p>')
    parts += [f'<div style="margin:0.5em 0">{_img(c)}</div>' for c in charts]
    parts.append(after)
    parts.append("</div>")
    return "".join(parts)


class StaticChart:
    """A chart as a display bundle: a PNG from vl-convert and the Vega-Lite spec (a frontend
    that draws the spec shows it live; nbconvert and the rest show the image)."""

    def __init__(self, chart):
        self.spec = _spec(chart)

    def _repr_mimebundle_(self, include=None, exclude=None):
        png, w, h = render_png(self.spec)
        data = {"image/png": base64.b64encode(png).decode(), vl_display.VEGALITE_MIME_TYPE: self.spec,
                "text/plain": f"<chart: {chart_title(self.spec)}>"}
        return data, {"image/png": {"width": w, "height": h}}


def show(chart) -> None:
    """Display ``chart``: live where widgets run, as an image everywhere else."""
    cls = live_chart_class()
    if cls is not None:
        display(cls(spec=_spec(chart), data={}))
        display(HTML(static_html([chart])))
    else:
        display(StaticChart(chart))


# ---- numbers and tables ------------------------------------------------------------------------

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def format_number(x, digits: int = 4) -> str:
    """A number as a reader writes it: whole numbers without decimals (``3``, ``200,000``),
    others to ``digits`` significant digits without trailing zeros, and only numbers below 1e-3
    or from 1e12 up as a power of ten (``1×10⁻⁷``). Missing values are ``-``."""
    if x is None or isinstance(x, (bool, np.bool_)):
        return "-" if x is None else str(bool(x))
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e12 or a < 1e-3:
        mantissa, exp = f"{v:.{digits - 1}e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        head = "" if mantissa in ("1", "-1") else f"{mantissa}×"
        sign = "-" if mantissa == "-1" else ""
        return f"{sign}{head}10{str(int(exp)).translate(_SUPERSCRIPT)}"
    if v.is_integer():
        return f"{int(v):,}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(a))))
    s = f"{round(v, decimals):,.{decimals}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def _cell(v) -> tuple[str, bool]:
    """(text, numeric) of one table cell."""
    if isinstance(v, (bool, np.bool_)):
        return ("yes" if v else "no"), False
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return format_number(v), True
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "-", True
    return str(v), False


class Table:
    """An HTML table shown whole (no truncated rows or text), numbers by
    :func:`format_number`, right-aligned; text left-aligned and wrapped."""

    def __init__(self, frame: pd.DataFrame, caption: str = "", formats: Mapping[str, object] | None = None):
        self.frame, self.caption, self.formats = frame, caption, dict(formats or {})

    def _repr_html_(self) -> str:
        head = "".join(f'<th style="text-align:left;vertical-align:bottom">{html.escape(str(c))}</th>'
                       for c in self.frame.columns)
        body = []
        for row in self.frame.itertuples(index=False):
            tds = []
            for col, v in zip(self.frame.columns, row):
                fmt = self.formats.get(col)
                text, numeric = (fmt(v), True) if fmt else _cell(v)
                align = "right" if numeric else "left"
                tds.append(f'<td style="text-align:{align};white-space:{"nowrap" if numeric else "normal"};'
                           f'vertical-align:top;max-width:42em">{html.escape(text)}</td>')
            body.append("<tr>" + "".join(tds) + "</tr>")
        cap = f'<caption style="caption-side:top;text-align:left">{html.escape(self.caption)}</caption>' \
            if self.caption else ""
        return (f'<div style="overflow-x:auto"><table class="costmodel-table">{cap}<thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table></div>')

    def __repr__(self) -> str:
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200,
                               "display.max_colwidth", None):
            return repr(self.frame)


def table(frame: pd.DataFrame | Sequence[Mapping], caption: str = "", formats: Mapping[str, object] | None = None,
          columns: Sequence[str] | None = None) -> Table:
    """``frame`` (or a list of dicts) as a :class:`Table`; ``columns`` picks and orders them."""
    df = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(list(frame))
    if columns is not None:
        df = df[list(columns)]
    return Table(df.reset_index(drop=True), caption, formats)


def facts(mapping: Mapping[str, object], caption: str = "") -> Table:
    """A summary dict as a two-column table (underscores in the keys read as spaces)."""
    rows = [{"": str(k).replace("_", " "), "value": v} for k, v in mapping.items()
            if not isinstance(v, (list, dict))]
    return Table(pd.DataFrame(rows, columns=["", "value"]), caption)


class HTMLBlock:
    """Raw HTML for display (the package's own markup)."""

    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup


def collapsible(summary: str, content) -> HTMLBlock:
    """``content`` (anything with ``_repr_html_``, or text) folded under ``summary``."""
    inner = content._repr_html_() if hasattr(content, "_repr_html_") else f"<pre>{html.escape(str(content))}</pre>"
    return HTMLBlock(f"<details><summary>{html.escape(summary)}</summary>{inner}</details>")


# ---- equations -------------------------------------------------------------------------------

#: the plain-text equations line up only in a fixed-width font (the page's own code font first)
MONO = "var(--jp-code-font-family, 'DejaVu Sans Mono'), 'DejaVu Sans Mono', Menlo, Consolas, monospace"


#: nbconvert's template for the notebooks' static copies (JupyterLab's, less every script it fetches
#: from a network); ``jupyter nbconvert --to html`` in the repository picks it up by
#: jupyter_nbconvert_config.py there, and :func:`html_exporter` uses it wherever it runs
OFFLINE_TEMPLATE = "costmodel-offline"


def configure_nbconvert(c) -> None:
    """Point an nbconvert configuration ``c`` at :data:`OFFLINE_TEMPLATE`."""
    c.HTMLExporter.extra_template_basedirs = [str(Path(__file__).resolve().parent / "templates" / "nbconvert")]
    c.HTMLExporter.template_name = OFFLINE_TEMPLATE


def html_exporter():
    """An HTMLExporter whose pages need no network (:data:`OFFLINE_TEMPLATE`)."""
    # nbconvert (with jupyterlab): slow to import and needed only to export a notebook as a page
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    c = Config()
    configure_nbconvert(c)
    return HTMLExporter(config=c)


def equations_html(values: Mapping[str, object], policy: str = "drain_local") -> str:
    """The model's equations at ``values``' categoricals (:func:`costmodel.readable.equations`)
    typeset as MathML, which the browser draws itself (no MathJax, no network), each with its
    plain text and its LaTeX in collapsible blocks."""
    eqs = readable.equations(values["gap_model"], values["position_model"], values["shootdown_model"], policy)
    parts = [f'<div class="costmodel-equations"><p><b>The model</b> (gap {html.escape(values["gap_model"])}, '
             f'position {html.escape(values["position_model"])}, shootdown {html.escape(values["shootdown_model"])}, '
             f'policy {html.escape(policy)})</p>']
    for e in eqs:
        parts.append(f'<div style="margin:0.6em 0"><div>{html.escape(e.label)}</div>'
                     f'<div style="overflow-x:auto;overflow-y:hidden;padding:0.2em 0">{e.mathml}</div>'
                     f'<details><summary style="color:#555;font-size:85%">as text</summary>'
                     f'<pre style="margin:0.2em 0;padding:0.15em 0 0.3em;overflow-x:auto;line-height:1.1;font-family:{MONO}">{html.escape(e.text)}</pre></details>'
                     f'<details><summary style="color:#555;font-size:85%">LaTeX</summary>'
                     f'<code style="white-space:pre-wrap;font-size:85%">{html.escape(e.latex)}</code></details></div>')
    parts.append("</div>")
    return "".join(parts)


def equations_mathjax(values: Mapping[str, object], policy: str = "drain_local") -> str:
    """The same equations as display maths for MathJax (the explorer's equations panel), each in
    its own horizontally scrolling box so a long one is never cut off."""
    eqs = readable.equations(values["gap_model"], values["position_model"], values["shootdown_model"], policy)
    return "".join(f'<div style="margin:0.4em 0"><b>{html.escape(e.label)}</b>'
                   f'<div style="overflow-x:auto;overflow-y:hidden">$${e.latex}$$</div></div>' for e in eqs)


# ---- statements the notebooks make, from the data ----------------------------------------------


def dataset_of(paramset) -> Path | None:
    """The committed measurement directory a calibrated set was fitted from (its provenance's
    ``dataset_id``), or None when it names none or the directory is not in this checkout."""
    if paramset is None:
        return None
    ds = (getattr(paramset, "provenance", None) or {}).get("dataset_id")
    path = paramfile.DATA_DIR / "measurements" / str(ds) if ds else None
    return path if path is not None and path.is_dir() else None


def relative(path) -> str:
    """A path inside the project's data directory as ``data/...`` (else unchanged)."""
    p = Path(path)
    try:
        return str(Path(paramfile.DATA_DIR.name) / p.resolve().relative_to(paramfile.DATA_DIR.resolve()))
    except ValueError:
        return str(path)


def workload_table() -> pd.DataFrame:
    """The workload presets (:data:`costmodel.presets.WORKLOAD_PRESETS`): name, title, the values
    each sets (numbers as :func:`format_number` writes them) and where they come from."""
    def value(v):
        return v if isinstance(v, str) else format_number(v)

    return pd.DataFrame([{"name": p.name, "title": p.title,
                          "sets": "; ".join(f"{k} = {value(v)}" for k, v in p.values.items()), "source": p.source}
                         for p in WORKLOAD_PRESETS.values()])


def calibrated(sets: Mapping[str, object]) -> dict:
    """The calibrated sets (``data/params``) among :func:`costmodel.presets.parameter_sets`:
    the machines this project measured, without the sets built from published figures."""
    return {name: ps for name, ps in sets.items() if name.startswith(f"{paramfile.PARAMS_DIR.name}/")}


def _with_interval(e: Mapping | None, unit: str = "") -> str:
    if e is None:
        return "-"
    v = e["value"]
    text = v if isinstance(v, str) else format_number(v)
    if e.get("ci_low") is not None and e.get("ci_high") is not None:
        text += f" [{format_number(e['ci_low'])}, {format_number(e['ci_high'])}]"
    return f"{text} ({e['source']})"


def sets_table(names: Sequence[str], machine_only: bool = True) -> pd.DataFrame:
    """Committed parameter sets side by side (:func:`costmodel.paramfile.diff_many`), one row per
    parameter: unit, each set's value with its interval and source, the largest over the smallest
    value, and whether some pair of sets lies beyond both intervals. ``names``: keys of
    :func:`costmodel.paramfile.committed_sets`."""
    files = paramfile.committed_sets()
    paths = [files[n] for n in names]
    if len(paths) < 2:
        raise ValueError("sets_table compares two or more parameter sets")
    doc = json.loads(diff_many(paths, as_json=True))
    rows = []
    for r in doc["parameters"]:
        entry = registry.PARAMS.get(r["parameter"])
        if machine_only and (entry is None or entry.kind != registry.MACHINE):
            continue
        row = {"parameter": r["parameter"], "unit": r["unit"]}
        row.update({name: _with_interval(e) for name, e in zip(names, r["sets"])})
        row["largest / smallest"] = "-" if r["spread"] is None else f"{format_number(r['spread'], 3)}×"
        row["some pair beyond both intervals"] = r["verdict"] == "EXCEEDS BOTH INTERVALS"
        rows.append(row)
    return pd.DataFrame(rows)


def simulation_outside(every: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`costmodel.validate.model_vs_simulation` whose simulated value exists
    and whose interval misses the model (rows the simulation does not estimate are not misses)."""
    return every[every["sim"].notna() & ~every["inside"].astype(bool)].reset_index(drop=True)


def probe_validation(values: Mapping[str, object], paramset=None) -> dict:
    """The unnecessary-copy probe against the model for every committed measurement set
    (:func:`costmodel.validate.kernel_rows`), and model, simulation and kernel side by side
    (:func:`costmodel.validate.unnecessary_copy_validation`) for one set: the one the parameter
    set was calibrated from when it is committed, else the first. Returns ``summaries`` (a
    frame, one row per set), ``set`` (the set compared point by point, or None), ``policy`` (of
    that set's kernel), ``frame`` and ``agreement``."""
    sets = validate.measurement_sets()
    summaries, measured = {}, {}
    for name, directory in sets.items():
        measured[name], summary = validate.kernel_rows(directory)
        summaries[name] = summary
    own = dataset_of(paramset)
    name = own.name if own is not None and own.name in sets else next(iter(sets), None)
    policy = summaries[name]["policy"] if name else "drain_local"
    frame = validate.unnecessary_copy_validation(values, measured=measured.get(name), policy=policy)
    return {"summaries": kernel_summary_rows(summaries), "set": name, "policy": policy, "frame": frame,
            "agreement": validate.agreement(frame)}


def whole_workloads(paramset) -> tuple[pd.DataFrame, dict] | str:
    """:func:`costmodel.prediction.predict` on the measurements the parameter set was calibrated
    from (the machine that recorded them, named by the set), or a sentence saying why there is nothing to
    predict."""
    directory = dataset_of(paramset)
    if directory is None:
        return ("No committed measurement set belongs to this parameter set, so there is nothing to "
                "predict: run `costmodel bench --out data/measurements/<id>` on the machine.")
    try:
        return prediction.predict(directory)
    except UserError as exc:
        return str(exc)


def kernel_summary_rows(summaries: Mapping[str, dict]) -> pd.DataFrame:
    """One row per measurement set from :func:`costmodel.validate.kernel_rows`' summaries."""
    rows = []
    for name, s in summaries.items():
        row = {"measurement set": name, "kernel policy": s["policy"], "batch size found": s["batch_size"],
               "fractions holding the model": f"{s['inside_ci']} of {s['rows']}"}
        for pm, g in s["by_position_model"].items():
            row[f"largest |model - measured|, {pm} position"] = g["max_abs_difference"]
        rows.append(row)
    return pd.DataFrame(rows)


def prediction_summary(summary: Mapping) -> dict:
    """The agreement of :func:`costmodel.prediction.predict` as a reader asks for it."""
    s = summary
    out = {
        "measurements": relative(s["directory"]),
        "CPU": s["cpu"],
        "kernel": f"{s['kernel_release']} (preset {s['preset']}, policy {s['policy']})",
        "machine costs from": s["param_set_chosen"],
        "cost within the tolerance": f"{s['cost_within']} of {s['priced']} priced configurations within "
                                     f"{s['cost_tolerance']:.0%} of the measured mean",
        "copies": f"{s['copy_inside']} of {s['copy_rows']} measured copy fractions hold the model's P(copy) in "
                  f"their {s['fraction_confidence']:.0%} interval",
    }
    if s["fault_rows"]:
        out["faults"] = (f"{s['fault_inside']} of {s['fault_rows']} measured fractions of writes that faulted hold "
                         f"the model's P(fault) in their {s['fraction_confidence']:.0%} interval")
    return out


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def swap_answer(rows: pd.DataFrame, summary: Mapping) -> str:
    """One sentence answering the original report's swap question (does a write after a swap-in
    copy a page for nothing?) from the ``swap_cow`` rows of :func:`costmodel.prediction.predict`:
    the configurations that took no WP fault, those that faulted and reused, those that copied,
    and the copies of pages no other process still held (unnecessary ones). Empty when the
    measurements have no swap_cow rows."""
    sw = rows[rows["probe"] == "swap_cow"] if len(rows) else rows
    if sw.empty:
        return ""
    faulted = pd.to_numeric(sw["faulted"], errors="coerce").fillna(0.0)
    copied = pd.to_numeric(sw["copied"], errors="coerce").fillna(0.0)
    n = pd.to_numeric(sw["copied_n"], errors="coerce").fillna(0).astype(int)
    shared = sw["sharing"].astype(str) == "child_alive"   # another process still maps the page
    no_fault = faulted == 0
    reused = (faulted > 0) & (copied == 0)
    copies = copied > 0
    unnecessary = int(round(float((copied[~shared] * n[~shared]).sum())))
    writes_unshared = int(n[~shared].sum())

    def kinds(mask) -> str:
        groups = sw[mask].groupby(["sharing", "swap_path"], sort=True).size()
        return ", ".join(f"{s} ({p})" for (s, p) in groups.index) or "none"

    necessary = "all with the child still holding the page, so necessary" if bool((shared | ~copies).all()) \
        else f"{_count(int((copies & ~shared).sum()), 'configuration')} without another holder"
    sentence = (f"Of the {_count(len(sw), 'swap_cow configuration')} that write a page right after its swap-in "
                f"(sharing and swap-in path in brackets) on {summary['kernel_release']}, "
                f"{int(no_fault.sum())} took no WP fault at all ({kinds(no_fault)}), "
                f"{int(reused.sum())} faulted and reused the page ({kinds(reused)}), "
                f"{int(copies.sum())} copied ({necessary}); "
                f"{unnecessary} of {writes_unshared:,} writes to pages no other process held copied, "
                f"so {'no unnecessary copy happens after a swap-in here' if unnecessary == 0 else 'unnecessary copies do happen'}.")
    ratios = [r for r in summary.get("loop_ratios", []) if r["against"].startswith("threads=2")]
    if ratios:
        worst = max(ratios, key=lambda r: r["ratio"])
        sentence += (f" The report's swap-out/swap-in/write loop costs {worst['ratio']:.2f}× with two threads on "
                     f"two CPUs against one thread ({worst['swap_path']}); the model, given the one-thread time, "
                     f"predicts {worst['predicted_ratio']:.2f}× ({worst['ratio_error']:+.1%}, "
                     f"{'within' if worst['ratio_within'] else 'outside'} the "
                     f"{summary.get('loop_ratio_tolerance', 0.2):.0%} target) from "
                     f"{worst['pageout_tlb_flushes']} shootdowns per pageout, each a wait for the other CPU and "
                     f"an interruption of it: TLB shootdowns, not copies.")
    return sentence
