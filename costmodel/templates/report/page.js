window.costmodelViews = {};
window.costmodelReady = Promise.all(Object.entries(costmodelSpecs).map(([id, spec]) =>
  vegaEmbed('#' + id, spec, {actions: false, renderer: id === 'explore' ? 'canvas' : 'svg'}).then(r => {
    window.costmodelViews[id] = r.view; })));

function costmodelSig4(v) {
  if (v === 0) return '0';
  const d = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(v))));
  return Number(v.toFixed(d)).toLocaleString('en-US', {maximumFractionDigits: d});
}
function costmodelFormat(v, unit) {
  if (v === null || v === undefined || !isFinite(v)) return '-';
  if (unit === 's') v = v * 1e9;
  if (unit === 'ns' || unit === 's') {
    const a = Math.abs(v);
    if (v === 0) return unit === 's' ? '0 s' : '0 ns';
    if (a < 1e4) return costmodelSig4(v) + ' ns';
    if (a < 1e7) return costmodelSig4(v / 1e3) + ' \u00b5s';
    if (a < 1e10) return costmodelSig4(v / 1e6) + ' ms';
    return costmodelSig4(v / 1e9) + ' s';
  }
  const text = Number.isInteger(v) ? v.toLocaleString('en-US') : costmodelSig4(v);
  return (unit && unit !== 'probability' && unit !== 'flag') ? text + ' ' + unit : text;
}
window.costmodelReady.then(() => {
  const page = costmodelPage, view = window.costmodelViews.explore;
  for (const [name, unit] of Object.entries(page.readouts)) {
    const out = document.getElementById('val-' + name);
    const show = (v) => { out.textContent = costmodelFormat(v, unit); };
    show(view.signal(name));
    view.addSignalListener(name, (_, v) => show(v));
  }
  const choice = () => page.choices.map(c => view.signal(c)).join('|');
  const update = () => {
    const key = choice();
    for (const [name, keys] of Object.entries(page.matters))
      document.getElementById('row-' + name).classList.toggle('idle', !keys.includes(key));
    for (const w of page.warnings) {
      const el = document.getElementById(w.id);
      el.hidden = w.when ? !w.when.split(', ').every(kv => { const [k, v] = kv.split(' = '); return view.signal(k) === v; })
                         : w.unless.includes(key);
    }
  };
  for (const c of page.choices) view.addSignalListener(c, update);
  update();
  // while a slider moves, the map is drawn coarse; a moment after the last move, in full
  let timer = null;
  document.getElementById('controls').addEventListener('input', (ev) => {
    if (!ev.target || ev.target.type !== 'range') return;
    if (view.signal(page.detail)) view.signal(page.detail, false);
    clearTimeout(timer);
    timer = setTimeout(() => { view.signal(page.detail, true).runAsync(); }, 250);
  }, true);
});
