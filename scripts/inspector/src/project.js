// The project page (internal/liveview/assets/project.html): charts of the signed-in
// key's project per UTC day, from GET /ui/api/project (uPlot).
import uPlot from 'uplot';

const root = document.getElementById('project');
const base = root.dataset.root;
const token = root.dataset.token;
const $ = (id) => document.getElementById(id);
const colors = { COMPLETED: '#2e7d32', TIMED_OUT: '#ef6c00', ERROR: '#c5221f', RUNNING: '#1f5fbf', PENDING: '#9e9d24' };
let plots = [];

function chart(el, title, days, series, opts = {}) {
  const width = Math.max(300, el.clientWidth || 520);
  const bars = uPlot.paths.bars({ size: [0.7, 40] });
  const p = new uPlot({
    width, height: 220, title: undefined,
    scales: { x: { time: true } },
    axes: [{}, { size: 60, values: opts.values }],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, fill: s.line ? undefined : s.color + '99',
      paths: s.line ? undefined : bars, width: s.line ? 2 : 1, dash: s.dash, points: { show: false } }))],
  }, [days, ...series.map((s) => s.data)], el);
  plots.push(p);
}

function bytes(u, vals) {
  return vals.map((v) => (v >= 1e9 ? (v / 1e9).toFixed(1) + ' GB' : v >= 1e6 ? (v / 1e6).toFixed(1) + ' MB' : v >= 1e3 ? (v / 1e3).toFixed(0) + ' kB' : v + ' B'));
}

async function load(days) {
  const res = await fetch(`${base}ui/api/project?days=${days}`, { headers: { 'X-Dashboard-Token': token }, credentials: 'same-origin' });
  if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message || res.statusText);
  const u = await res.json();
  for (const p of plots) p.destroy();
  plots = [];
  for (const id of ['chart-sessions', 'chart-minutes', 'chart-concurrency', 'chart-proxy']) $(id).replaceChildren();
  const statuses = Object.keys(u.sessions).sort();
  // Stacked bars: each series is drawn at the sum of itself and the ones below it.
  const acc = new Array(u.days.length).fill(0);
  const stacked = statuses.map((st) => ({ label: st, color: colors[st] || '#6a7280', data: u.sessions[st].map((v, i) => (acc[i] += v)) })).reverse();
  chart($('chart-sessions'), 'Sessions', u.days, stacked.length ? stacked : [{ label: 'sessions', color: '#1f5fbf', data: u.days.map(() => 0) }]);
  chart($('chart-minutes'), 'Browser minutes', u.days, [{ label: 'minutes', color: '#1f5fbf', data: u.browserMinutes.map((m) => Math.round(m * 10) / 10) }]);
  chart($('chart-concurrency'), 'Peak concurrency', u.days, [
    { label: 'peak', color: '#1f5fbf', data: u.peakConcurrency },
    { label: 'limit', color: '#c5221f', data: u.days.map(() => u.limit), line: true, dash: [6, 4] },
  ]);
  chart($('chart-proxy'), 'Proxy bytes', u.days, [{ label: 'bytes', color: '#6a1b9a', data: u.proxyBytes }], { values: bytes });
  const total = statuses.reduce((n, st) => n + u.sessions[st].reduce((a, b) => a + b, 0), 0);
  $('project-status').textContent = `${total} sessions in ${days} days · concurrency limit ${u.limit}`;
  root.dataset.loaded = '1';
}

$('days').addEventListener('change', (e) => load(Number(e.target.value)).catch((err) => ($('project-status').textContent = err.message)));
load(30).catch((err) => ($('project-status').textContent = err.message));
