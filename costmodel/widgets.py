"""Notebook controls generated from the registry, and an explorer that redraws the charts of
:mod:`costmodel.charts` as the controls move.

Optional: needs ipywidgets (and, for in-place chart updates, anywidget); importing this module
without them raises ImportError with what to install.

- :class:`ParameterPanel`: one control per registry parameter, nothing listed by hand: a slider
  per numeric parameter with its unit and bounds (logarithmic where
  :func:`axes.slider_is_log` says so: the registry's ``log_scale`` flag, or bounds spanning three
  decades), a dropdown per categorical one with each choice's meaning in the tooltip. Beside each
  slider a box shows the value the model gets (:func:`format_value`) and takes a typed one.
- :class:`Explorer`: the panel, a parameter-set picker (``data/params``, ``data/reference``),
  kernel and workload presets, the model's equations as a person reads them
  (:mod:`costmodel.readable`) beside the controls, and the charts (the residency with simulated
  points). A control change re-evaluates the model and hands only the new data to each chart
  (:class:`LiveChart`); the page around them is not redrawn. Displayed in a notebook, it also
  leaves a static copy of its charts and equations for viewers without widgets
  (:meth:`Explorer.static_html`, hidden wherever the live charts draw).
"""

from __future__ import annotations

import html
import json
import math
import time
from functools import lru_cache
from typing import Callable, Mapping

import altair as alt
import numpy as np
import pandas as pd

try:
    import ipywidgets as W
    from IPython.display import HTML, display
except ImportError as exc:  # pragma: no cover - exercised only without the notebooks extra
    raise ImportError("costmodel.widgets needs ipywidgets: pip install 'costmodel[notebooks]'") from exc

from . import axes, chartdata, charts, notebook, paramfile, presets, registry
from .axes import LOG_STEP
from .errors import UserError
from .model import residency
from .model.outputs import policy_parameters
from .notebook import equations_mathjax
from .validate import residency_simulated
from .vegawidget import vega_widget_class


# ---- one control per registry entry -------------------------------------------------------------


def format_value(entry: registry.Numeric, value) -> str:
    """A numeric parameter's value as its control's readout shows it: whole numbers for integer
    parameters, otherwise up to six significant digits; the text parses back to the value the
    model gets (to those digits)."""
    if entry.integer:
        return str(int(value))
    v = float(value)
    return "0" if v == 0 else f"{v:.6g}"


class _NumericControl:
    """A slider for one numeric parameter, mapping slider positions to checked values.

    The slider's own readout is off: it would show the slider position (``3.00`` for 3 CPUs on
    a logarithmic slider, ``0.977`` at the position that means 0). The text box beside it shows
    the value the model gets (:meth:`get`) and takes a typed value, checked by the registry."""

    def __init__(self, entry: registry.Numeric, value, on_change: Callable[[], None] | None = None):
        self.entry = entry
        self.log = axes.slider_is_log(entry.name)
        self._on_change = on_change or (lambda: None)
        self._setting = False
        style = {"description_width": "190px"}
        layout = W.Layout(width="400px")
        tip = f"{entry.description} [{entry.unit}; {entry.low:g} .. {entry.high:g}; default {entry.default:g}; " \
              f"source: {entry.source}]"
        if self.log:
            self.floor = axes.log_floor(entry.name)
            self.zero = entry.low == 0
            lo10, hi10 = math.log10(self.floor), math.log10(entry.high)
            self.min_exp = lo10 - LOG_STEP if self.zero else lo10
            self.slider = W.FloatLogSlider(value=self._to_slider(value), base=10, min=self.min_exp, max=hi10,
                                           step=LOG_STEP, description=entry.name, readout=False,
                                           continuous_update=False, style=style, layout=layout,
                                           description_allow_html=False, tooltip=tip)
        elif entry.integer:
            self.slider = W.IntSlider(value=int(value), min=int(entry.low), max=int(entry.high), step=1,
                                      description=entry.name, readout=False, continuous_update=False, style=style,
                                      layout=layout, tooltip=tip)
        else:
            step = 0.001 if entry.probability else (entry.high - entry.low) / 1000
            self.slider = W.FloatSlider(value=float(value), min=entry.low, max=entry.high, step=step,
                                        description=entry.name, readout=False, continuous_update=False,
                                        style=style, layout=layout, tooltip=tip)
        self.readout = W.Text(value="", continuous_update=False, layout=W.Layout(width="95px"), tooltip=tip)
        self.unit = W.Label(entry.unit, layout=W.Layout(width="80px"))
        self._exact = value  # a value set from a file or preset, kept until the slider moves
        self._exact_pos = self.slider.value
        self.box = W.HBox([self.slider, self.readout, self.unit])
        self.slider.observe(self._moved, names="value")
        self.readout.observe(self._typed, names="value")
        self._show()

    def _to_slider(self, value) -> float:
        v = float(value)
        if v <= 0:
            return 10 ** self.min_exp
        return min(max(v, 10 ** self.min_exp), self.entry.high)

    def get(self):
        pos = self.slider.value
        if self._exact is not None and pos == self._exact_pos:
            return self._exact
        if self.log:
            if self.zero and pos < self.floor * 10 ** (-LOG_STEP / 2):
                v = 0.0
            else:
                v = min(max(pos, self.floor), self.entry.high)
            return int(round(v)) if self.entry.integer else float(v)
        return int(pos) if self.entry.integer else float(pos)

    def set(self, value, notify: bool = False) -> None:
        """Put ``value`` on the control exactly (the slider goes to the nearest position);
        ``notify``: tell the panel afterwards."""
        pos = self._to_slider(value) if self.log else value
        self._setting = True
        try:
            self.slider.value = pos
        finally:
            self._setting = False
        self._exact, self._exact_pos = value, self.slider.value
        self._show()
        if notify:
            self._on_change()

    def _show(self) -> None:
        self._setting = True
        try:
            self.readout.value = format_value(self.entry, self.get())
        finally:
            self._setting = False

    def _moved(self, _change) -> None:
        if self._setting:
            return
        self._show()
        self._on_change()

    def _typed(self, change) -> None:
        if self._setting:
            return
        try:
            value = registry.parse_value(self.entry.name, change["new"])
        except UserError:
            self._show()  # not a value of this parameter: the box shows the current one again
            return
        self.set(value, notify=True)


class _CategoricalControl:
    def __init__(self, entry: registry.Categorical, value, on_change: Callable[[], None] | None = None):
        self.entry = entry
        self._on_change = on_change or (lambda: None)
        self._setting = False
        tip = entry.description + " " + "; ".join(f"{c}: {m}" for c, m in entry.meanings.items())
        self.slider = W.Dropdown(options=list(entry.choices), value=value, description=entry.name,
                                 style={"description_width": "190px"}, layout=W.Layout(width="400px"), tooltip=tip)
        self.unit = W.Label("", layout=W.Layout(width="80px"))
        self.box = W.HBox([self.slider, self.unit])
        self.slider.observe(self._moved, names="value")

    def get(self):
        return self.slider.value

    def set(self, value, notify: bool = False) -> None:
        self._setting = True
        try:
            self.slider.value = value
        finally:
            self._setting = False
        if notify:
            self._on_change()

    def _moved(self, _change) -> None:
        if not self._setting:
            self._on_change()


class ParameterPanel:
    """One control per entry of :data:`registry.PARAMS` that a policy's outputs depend on, grouped
    by kind (workload, machine); the others (the swap loop's) keep the values they were given."""

    def __init__(self, values: Mapping[str, object] | None = None):
        vals = registry.as_point(values)
        shown = policy_parameters()
        self._kept = {n: vals[n] for n in registry.PARAMS if n not in shown}
        self.controls: dict[str, _NumericControl | _CategoricalControl] = {}
        for name, entry in registry.PARAMS.items():
            if name not in shown:
                continue
            cls = _NumericControl if isinstance(entry, registry.Numeric) else _CategoricalControl
            self.controls[name] = cls(entry, vals[name], on_change=self._changed)
        groups = []
        for kind in (registry.WORKLOAD, registry.MACHINE):
            groups.append(W.VBox([c.box for n, c in self.controls.items() if registry.PARAMS[n].kind == kind]))
        self.widget = W.Accordion(children=groups, titles=("workload", "machine"), selected_index=0)
        self._callbacks: list[Callable[[dict], None]] = []
        self._quiet = False

    def raw_values(self) -> dict:
        """The controls' values as they stand, not yet checked against each other."""
        return {**self._kept, **{n: c.get() for n, c in self.controls.items()}}

    def values(self) -> registry.Point:
        """The current values, checked against the registry (raises UserError if inconsistent)."""
        return registry.resolve(self.raw_values())

    def usable_values(self) -> tuple[registry.Point, str]:
        """The values to draw, and a sentence when they are not the controls' own: where
        ``remote_cpus`` leaves too few CPUs, ``cpus`` is raised to ``remote_cpus + 1``, as the
        report and the cost chart do (the cpus control keeps its value). Raises UserError
        where the values are inconsistent otherwise."""
        raw = self.raw_values()
        try:
            return registry.resolve(raw), ""
        except UserError as exc:
            first = exc
        try:
            bumped = registry.raise_cpus(raw)
        except (TypeError, ValueError):
            raise first from None
        try:
            raised = registry.resolve(bumped)
        except UserError as exc:  # what remains wrong once cpus is raised (or the first, if it was not)
            raise (exc if bumped["cpus"] != raw["cpus"] else first) from None
        return raised, (f"remote_cpus = {raw['remote_cpus']} needs at least {raised['cpus']} CPUs: drawn with "
                        f"cpus = {raised['cpus']} (raised from {raw['cpus']}, as the report does); lower "
                        "remote_cpus or raise cpus to draw your own")

    def set_values(self, values: Mapping[str, object]) -> None:
        """Set every control at once; observers are told once, afterwards."""
        vals = registry.as_point(values)
        self._kept = {n: vals[n] for n in self._kept}
        self._quiet = True
        try:
            for n, c in self.controls.items():
                c.set(vals[n])
        finally:
            self._quiet = False
        self._notify()

    def observe(self, callback: Callable[[dict], None]) -> None:
        self._callbacks.append(callback)

    def _changed(self) -> None:
        if not self._quiet:
            self._notify()

    def _notify(self) -> None:
        for cb in self._callbacks:
            cb(self)


# ---- charts that take new data without being redrawn ------------------------------------------

def columns_payload(frame: pd.DataFrame) -> dict:
    """A frame as the chart widget takes it: ``{"n": rows, "columns": {name: column}}`` where a
    numeric column is ``{"type": "f64", "buffer": <little-endian float64 bytes>}`` and a text or
    categorical one ``{"type": "cat", "itemsize": 1|2, "buffer": <codes>, "categories": [...]}``.
    Binary buffers travel beside the JSON message, so handing over a 200 x 200 map costs a copy,
    not a text encoding of every number."""
    cols = {}
    for c in frame.columns:
        col = frame[c]
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object or col.dtype.kind in "OSU":
            cat = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype("category")
            cats = [str(x) for x in cat.cat.categories]
            dtype = np.uint8 if len(cats) < 256 else np.uint16
            codes = np.ascontiguousarray(cat.cat.codes.to_numpy(), dtype=dtype)
            cols[c] = {"type": "cat", "itemsize": codes.itemsize, "categories": cats, "buffer": memoryview(codes)}
        else:
            arr = np.ascontiguousarray(col.to_numpy(dtype="<f8"))
            cols[c] = {"type": "f64", "buffer": memoryview(arr)}
    return {"n": int(len(frame)), "columns": cols}


def decode_payload(payload: Mapping) -> pd.DataFrame:
    """The inverse of :func:`columns_payload` (what the browser rebuilds), for checks."""
    n = payload["n"]
    out = {}
    for c, spec in payload["columns"].items():
        if spec["type"] == "f64":
            out[c] = np.frombuffer(spec["buffer"], dtype="<f8", count=n)
        else:
            codes = np.frombuffer(spec["buffer"], dtype=np.uint8 if spec["itemsize"] == 1 else np.uint16, count=n)
            out[c] = np.asarray(spec["categories"], dtype=object)[codes] if n else np.array([], dtype=object)
    return pd.DataFrame(out)


class LiveChart:
    """A chart whose data are named datasets, updated in place.

    ``build(sources)`` gets ``{name: alt.Chart(alt.NamedData(name))}`` and returns the chart.
    :meth:`update` sends new frames (data only); :meth:`rebuild` sends a new spec (when the chart's
    shape changes, e.g. other map axes). Without anywidget the chart is redrawn in an Output
    widget instead, which works the same but flickers.
    """

    def __init__(self, build: Callable[[dict], object], names: tuple[str, ...]):
        self.build, self.names = build, names
        cls = vega_widget_class()
        self.live = cls is not None
        self.widget = cls() if self.live else W.Output()
        self.payload: dict = {}
        self._frames: dict[str, pd.DataFrame] = {}
        self._spec_key = None

    def _sources(self):
        return {n: alt.Chart(alt.NamedData(n)) for n in self.names}

    def rebuild(self, key=None) -> None:
        if key is not None and key == self._spec_key:
            return
        self._spec_key = key
        if self.live:
            self.widget.spec = self.build(self._sources()).to_dict()

    def update(self, frames: Mapping[str, pd.DataFrame]) -> dict:
        """Hand new data to the chart; returns the payload sent ({name: columns_payload})."""
        self._frames = dict(frames)
        self.payload = {n: columns_payload(f) for n, f in frames.items()}
        if self.live:
            self.widget.data = self.payload
        else:
            self._redraw()
        return self.payload

    def static_chart(self):
        """The chart with its current data inline (for a static image of it)."""
        return self.build({n: alt.Chart(f) for n, f in self._frames.items()})

    def _redraw(self) -> None:  # pragma: no cover - the fallback without anywidget
        chart = self.build({n: alt.Chart(f) for n, f in self._frames.items()})
        with self.widget:
            self.widget.clear_output(wait=True)
            with alt.data_transformers.disable_max_rows():
                display(chart)


# ---- the explorer -----------------------------------------------------------------------------



@lru_cache(maxsize=1)
def residency_inputs() -> tuple[str, ...]:
    """What the residency chart depends on besides the gap it sweeps: every registry parameter
    in the model's residency under any gap and position model, and the position model (read
    from the expressions, so a new parameter of the batch dynamics is picked up)."""
    names: set[str] = set()
    for g in registry.CATEGORICAL["gap_model"].choices:
        for pos in registry.CATEGORICAL["position_model"].choices:
            names |= {s.name for s in residency(g, pos).free_symbols}
    gaps = set(axes.GAP_PARAM.values())
    return tuple(n for n in registry.PARAMS if n in names and n not in gaps) + ("position_model",)

_NONE = "(none)"
_DEFAULTS = "(registry defaults)"


def equations_html(values: Mapping[str, object], policy: str = "drain_local") -> str:
    """The model's equations for ``values``' categoricals as a person reads them
    (:mod:`costmodel.readable`), as display maths for HTMLMath."""
    return equations_mathjax(values, policy)


#: the class of the charts' box while they show values older than the controls', and its look
STALE_CLASS = "costmodel-stale"
STALE_STYLE = f"<style>.{STALE_CLASS} {{ opacity: 0.35; filter: grayscale(1); }}</style>"


class Explorer:
    """Controls, equations and charts, wired together (see the module docstring)."""

    def __init__(self, values: Mapping[str, object] | None = None, x: str | None = None, y: str | None = None,
                 map_n: int = 100, residency_points: int = 40, paramset=None, simulated_points: int = 4,
                 simulated_faults: int = 20_000):
        """``simulated_points`` gaps per gap model (0: none) are simulated with
        ``simulated_faults`` WP faults each and drawn on the residency chart with their intervals."""
        self.map_n, self.residency_points = map_n, residency_points
        self.simulated_points, self.simulated_faults = simulated_points, simulated_faults
        self.panel = ParameterPanel(values)
        dx, dy = chartdata.default_map_axes(self.panel.values())
        x, y = x or dx, y or dy
        self.paramset = paramset
        files = paramfile.committed_sets()
        self._files = files
        start = next((label for label, path in files.items() if paramset is not None and path.stem == paramset.name),
                     _DEFAULTS)
        self.set_picker = W.Dropdown(options=[_DEFAULTS, *files], value=start, description="parameter set",
                                     style={"description_width": "110px"}, layout=W.Layout(width="470px"))
        self.kernel_picker = W.Dropdown(options=[_NONE, *registry.KERNEL_PRESETS], value=_NONE,
                                        description="kernel preset", style={"description_width": "110px"})
        self.workload_picker = W.Dropdown(options=[_NONE, *presets.WORKLOAD_PRESETS], value=_NONE,
                                          description="workload", style={"description_width": "110px"})
        numeric = list(registry.NUMERIC)
        self.x_picker = W.Dropdown(options=numeric, value=x, description="map x", style={"description_width": "60px"})
        self.y_picker = W.Dropdown(options=numeric, value=y, description="map y", style={"description_width": "60px"})
        self.note = W.HTML()
        self.status = W.HTML()
        self.equations = W.HTMLMath()
        self.cost_chart = LiveChart(lambda s: charts.cost_vs_cpus_chart(s["cost"]), ("cost",))
        self.breakdown_chart = LiveChart(lambda s: charts.cost_breakdown_chart(s["cost"]), ("cost",))
        self.map_chart = LiveChart(self._build_map, ("cells", "line"))
        self.residency_chart = LiveChart(lambda s: charts.residency_chart(s["residency"]), ("residency",))
        self.charts_box = W.VBox([self.cost_chart.widget, self.breakdown_chart.widget,
                                  W.HBox([self.x_picker, self.y_picker]), self.map_chart.widget,
                                  self.residency_chart.widget])
        self._eq_key = None
        self._res_key = None
        self.timings: dict[str, float] = {}

        for w in (self.set_picker, self.kernel_picker, self.workload_picker):
            w.observe(self._preset_changed, names="value")
        for w in (self.x_picker, self.y_picker):
            w.observe(lambda _: self.update(), names="value")
        self.panel.observe(lambda _: self.update())
        self.cost_chart.rebuild()
        self.breakdown_chart.rebuild()
        self.residency_chart.rebuild()
        self.update()

    # -- layout
    @property
    def widget(self):
        pickers = W.VBox([self.set_picker, W.HBox([self.kernel_picker, self.workload_picker]), self.note])
        left = W.VBox([pickers, self.panel.widget], layout=W.Layout(width="600px", flex="0 0 auto"))
        # beside the controls where the page is wide enough, below them where it is not; a long
        # equation scrolls in its own box (equations_html) instead of being cut off
        right = W.VBox([W.HTML("<b>The model</b>"), self.equations],
                       layout=W.Layout(flex="1 1 420px", min_width="380px", max_height="760px", overflow="auto"))
        return W.VBox([W.HTML(STALE_STYLE), W.HBox([left, right], layout=W.Layout(flex_flow="row wrap", width="100%")),
                       self.status, self.charts_box])

    def static_charts(self) -> list:
        """The explorer's charts at its current values, as plain altair charts with their data."""
        return [c.static_chart() for c in (self.cost_chart, self.breakdown_chart, self.map_chart,
                                           self.residency_chart)]

    def static_html(self) -> str:
        """What a copy without widgets shows in the explorer's place: its charts as images and the
        equations as text, at the current values (the starting point, in a saved notebook)."""
        values = self.panel.values()
        where = self.paramset.name if self.paramset is not None else "the registry defaults"
        note = (f"A static copy of the explorer at its starting point ({html.escape(where)}): the controls need "
                f"a running Jupyter kernel.<br>{self.status.value}.")
        return notebook.static_html(self.static_charts(), note=note, after=notebook.equations_html(values))

    def _ipython_display_(self):  # pragma: no cover - display only
        display(self.widget)
        display(HTML(self.static_html()))

    # -- presets and files
    def _preset_changed(self, _change=None) -> None:
        base = {}
        self.paramset = None
        notes = []
        if self.set_picker.value != _DEFAULTS:
            self.paramset = paramfile.load(self._files[self.set_picker.value])
            base = self.paramset.values()
            notes.append(f"<b>{self.paramset.name}</b>: {self.paramset.description}")
        workload = None if self.workload_picker.value == _NONE else self.workload_picker.value
        kernel = None if self.kernel_picker.value == _NONE else self.kernel_picker.value
        if workload:
            notes.append(presets.workload_preset(workload).source)
        if kernel:
            notes.append(f"{kernel}: {registry.KERNEL_PRESETS[kernel].note} (policy {registry.KERNEL_PRESETS[kernel].policy})")
        values, _ = presets.compose(base, workload, kernel,
                                    paramfile_origin=self.paramset.name if self.paramset is not None else "parameter set")
        self.note.value = "<br>".join(notes)
        self.panel.set_values(values)

    # -- charts
    def _build_map(self, s):
        return charts.decision_map_chart(s["cells"], [s["line"]], x=self._dm.x, y=self._dm.y, x_log=self._dm.x_log,
                                         y_log=self._dm.y_log,
                                         x_domain=(self._dm.cells[f"{self._dm.x}_lo"].min(),
                                                   self._dm.cells[f"{self._dm.x}_hi"].max()),
                                         y_domain=(self._dm.cells[f"{self._dm.y}_lo"].min(),
                                                   self._dm.cells[f"{self._dm.y}_hi"].max()),
                                         candidates=self._dm.candidates, against=self._dm.against)

    def _stale(self, why: str) -> None:
        """Grey the charts (they still show the last values that could be drawn) and say why."""
        self.charts_box.add_class(STALE_CLASS)
        self.status.value = (f"<span style='color:#b00'>{html.escape(str(why))}</span><br><i>The charts below "
                             "(greyed) still show the last values that could be drawn; fix this value to "
                             "update them.</i>")

    def update(self) -> dict[str, float] | None:
        """Re-evaluate at the panel's values and hand each chart its new data; returns seconds
        per step (also kept in :attr:`timings`). Values that leave too few CPUs for remote_cpus
        are drawn with cpus raised (and the status says so); other inconsistent values grey the
        charts, with the reason, until they are fixed."""
        try:
            values, raised = self.panel.usable_values()
        except UserError as exc:
            self._stale(exc)
            return None
        t = {}
        t0 = time.perf_counter()
        cost = chartdata.cost_vs_cpus_data(values)
        t["cost_data_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.cost_chart.update({"cost": cost})
        self.breakdown_chart.update({"cost": cost})
        t["cost_handoff_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            self._dm = chartdata.decision_map_data(values, x=self.x_picker.value, y=self.y_picker.value, n=self.map_n)
        except UserError as exc:
            self._stale(exc)
            return None
        t["map_data_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.map_chart.rebuild(key=(self._dm.x, self._dm.y, self._dm.x_log, self._dm.y_log))
        self.map_chart.update({"cells": map_frame(self._dm), "line": self._dm.line})
        t["map_handoff_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # residency against the gap moves only with the batch's own parameters (the gap is its axis)
        rkey = tuple(values[n] for n in residency_inputs())
        if rkey != self._res_key:
            frames = [chartdata.residency_data(values, n=self.residency_points)]
            if self.simulated_points:
                frames.append(residency_simulated(values, points=self.simulated_points,
                                                  faults=self.simulated_faults))
            self.residency_chart.update({"residency": chartdata.concat_rows(*frames)})
            self._res_key = rkey
        t["residency_s"] = time.perf_counter() - t0
        key = (values["gap_model"], values["position_model"], values["shootdown_model"])
        if key != self._eq_key:
            self.equations.value = equations_html(values)
            self._eq_key = key
        runs = chartdata.cheapest_along(cost)
        self.charts_box.remove_class(STALE_CLASS)
        self.status.value = ((f"<span style='color:#a60'>{html.escape(raised)}</span><br>" if raised else "")
                             + "cheapest along remote_cpus: " + "; ".join(
                                 f"<b>{r['policy']}</b> {r['from']}&ndash;{r['to']}" for r in runs))
        self.timings = t
        return t


def map_frame(dm: chartdata.DecisionMap) -> pd.DataFrame:
    """The columns of the decision map's cells that its chart reads (less to send)."""
    cols = [dm.x, dm.y, f"{dm.x}_lo", f"{dm.x}_hi", f"{dm.y}_lo", f"{dm.y}_hi", "cheapest", "cheapest_ns",
            "runner_up", "margin_ns", "margin_pct", "against_diff_ns"]
    return dm.cells[cols]


def payload_message(payload: Mapping) -> tuple[str, list]:
    """What the kernel sends for a payload: the JSON text and the binary buffers beside it (as
    ipywidgets splits a widget's state), for timing the hand-off."""
    # ipywidgets' own split of a state into JSON and buffers: a private helper of theirs, so
    # imported only where this timing aid needs it
    from ipywidgets.widgets.widget import _remove_buffers

    state, _paths, buffers = _remove_buffers({"data": payload})
    return json.dumps(state, allow_nan=False), buffers
