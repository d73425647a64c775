"""The live chart widget: an anywidget holding a Vega-Lite spec and its named datasets, with
vega-embed bundled from vl-convert-python so nothing is fetched from the network.

Its own module so that the notebook helpers and the explorer panel both use it without importing
each other; anywidget, traitlets and vl-convert are optional (imported when the class is made).
"""

from __future__ import annotations

from functools import lru_cache

from .charts import VL_VERSION

_WIDGET_JS = r"""
function column(c, n) {
  const dv = c.buffer;
  const bytes = dv.buffer.slice(dv.byteOffset, dv.byteOffset + dv.byteLength);
  if (c.type === "f64") return new Float64Array(bytes, 0, n);
  const codes = c.itemsize === 1 ? new Uint8Array(bytes, 0, n) : new Uint16Array(bytes, 0, n);
  return Array.from(codes, i => c.categories[i]);
}
function rows(spec) {
  const n = spec.n, keys = Object.keys(spec.columns);
  const cols = keys.map(k => column(spec.columns[k], n));
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = {};
    for (let j = 0; j < keys.length; j++) { const v = cols[j][i]; r[keys[j]] = Number.isNaN(v) ? null : v; }
    out[i] = r;
  }
  return out;
}
async function render({ model, el }) {
  let result = null;
  const push = async () => {
    if (!result) return;
    const data = model.get("data") || {};
    for (const [name, spec] of Object.entries(data)) {
      result.view.change(name, result.view.changeset().remove(() => true).insert(rows(spec)));
    }
    await result.view.runAsync();
  };
  const embed = async () => {
    if (result) result.finalize();
    // the current data go in with the spec, so no chart is ever drawn empty
    const spec = structuredClone(model.get("spec"));
    const data = model.get("data") || {};
    spec.datasets = Object.assign({}, spec.datasets || {},
      Object.fromEntries(Object.entries(data).map(([name, s]) => [name, rows(s)])));
    result = await vegaEmbed(el, spec, {actions: false, mode: "vega-lite"});
  };
  model.on("change:spec", embed);
  model.on("change:data", push);
  await embed();
  return () => { if (result) result.finalize(); };
}
export default { render };
"""


@lru_cache(maxsize=1)
def vega_widget_class():
    """An anywidget holding a Vega-Lite spec and its named datasets; vega-embed is bundled from
    vl-convert-python, so nothing is fetched from the network. None without anywidget."""
    # anywidget and vl-convert: the notebooks extra (optional); without them there is no live chart
    try:
        import anywidget
        import traitlets
        import vl_convert as vlc
    except ImportError:
        return None

    class VegaWidget(anywidget.AnyWidget):
        _esm = vlc.javascript_bundle(_WIDGET_JS, vl_version=VL_VERSION)
        spec = traitlets.Dict().tag(sync=True)
        data = traitlets.Dict().tag(sync=True)

    return VegaWidget
