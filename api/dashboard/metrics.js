// The Metrics tab: the stored series of GET …/metrics for the chosen range, then each
// collection cycle from /ws/metrics appended live.
//
// The stored series has CPU (% of one core), memory and its limit, and cumulative
// network and block I/O counters (rates are taken between points); CPU "% of the
// limit" comes from live messages. Longin's CPU is share-based, so the limit is
// the host's cores (cpuPercent / cpuPercentOfLimit): once a live message tells them,
// history is shown against them too.
import { api } from './api.js';
import { stream } from './live.js';
import { lineChart, fmtBytes, fmtRate, fmtPct } from './chart.js';
import { h } from './logview.js';

const RANGES = [['1h', '1 h', 3600], ['6h', '6 h', 21600], ['24h', '24 h', 86400], ['7d', '7 d', 604800]];
const KEYS = ['cpu', 'mem', 'limit', 'rx', 'tx', 'read', 'write'];

const sum = (list, key) => list.reduce((a, c) => a + (Number(c[key]) || 0), 0);

// Per-second rates of a cumulative counter; one that went back (a container
// restarted or replaced) gives no rate for that step.
function rates(points) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const [[pt, pv], [t, v]] = [points[i - 1], points[i]];
    const r = v == null || pv == null || t <= pt ? null : (v - pv) / ((t - pt) / 1000);
    out.push([t, r >= 0 ? r : null]);
  }
  return out;
}

export function mountMetrics(panel, app) {
  const { name, owner } = app.metadata;
  let range = RANGES[0];
  let gone = false;
  let loads = 0;
  let cores = null;
  let subscribed = false;
  // [t, value] per measure, oldest first; live points are marked `live`.
  let data = Object.fromEntries(KEYS.map((k) => [k, []]));

  const buttons = RANGES.map(([key, label]) => {
    const b = h('button', { type: 'button', class: 'ch-range', 'data-range': key, 'aria-pressed': String(key === range[0]) }, label);
    b.addEventListener('click', () => {
      range = RANGES.find((r) => r[0] === key);
      for (const x of buttons) x.setAttribute('aria-pressed', String(x === b));
      load();
    });
    return b;
  });
  const status = h('p', { class: 'ch-status', id: 'ch-status', role: 'status' });
  const root = h('div', { class: 'ch-metrics' }, h('div', { class: 'ch-ranges', role: 'group', 'aria-label': 'Time range' }, ...buttons), status);
  const chart = (id, title, opts) => {
    const box = h('div', {});
    root.append(h('section', { class: 'ch-panel', id }, h('h3', {}, title), box));
    return lineChart(box, opts);
  };
  // Byte rates start at a 1 KiB/s axis, so that an idle app's few bytes stay flat.
  const charts = {
    cpu: chart('ch-cpu', 'CPU', { format: fmtPct, yMax: 10, label: 'CPU use' }),
    mem: chart('ch-memory', 'Memory', { format: fmtBytes, binary: true, label: 'Memory use and limit' }),
    net: chart('ch-network', 'Network', { format: fmtRate, binary: true, yMax: 1024, label: 'Network traffic per second' }),
    io: chart('ch-blockio', 'Block I/O', { format: fmtRate, binary: true, yMax: 1024, label: 'Disk reads and writes per second',
      empty: 'No samples yet: rates need two collection cycles.' }),
  };
  panel.append(root);

  const since = () => Date.now() - range[2] * 1000;

  function render() {
    const xRange = [since(), Date.now()];
    const w = (pts) => pts.filter((p) => p[0] >= xRange[0]);
    const cpu = w(data.cpu);
    const cpuSeries = [{ name: '% of one core', points: cpu }];
    if (cores) cpuSeries.push({ name: `% of the limit (${cores} cores)`, points: cpu.map(([t, v]) => [t, v == null ? v : v / cores]) });
    charts.cpu.update(cpuSeries, { xRange });
    const limit = [...data.limit].reverse().find((p) => p[1] > 0)?.[1];
    charts.mem.update([{ name: 'memory', points: w(data.mem) }], { xRange, limit: limit && { value: limit, label: `limit ${fmtBytes(limit)}` } });
    const pair = (a, b, names) => names.map((n, i) => ({ name: n, points: w(rates(data[[a, b][i]])) }));
    charts.net.update(pair('rx', 'tx', ['received', 'sent']), { xRange });
    charts.io.update(pair('read', 'write', ['read', 'written']), { xRange });
  }

  async function load() {
    const g = ++loads;
    status.textContent = 'Loading…';
    const q = new URLSearchParams({ since: String(Math.floor(since() / 1000)) });
    if (owner) q.set('owner', owner);
    try {
      const series = await api('GET', `/api/applications/${encodeURIComponent(name)}/metrics?${q}`);
      if (g !== loads || gone) return;
      const next = Object.fromEntries(KEYS.map((k) => [k, []]));
      const stepMs = (series.step || 30) * 1000;
      let prev = null;
      for (const p of series.points ?? []) {
        const t = Date.parse(p.timestamp);
        // A missing step breaks the lines rather than joining across it.
        if (prev != null && t - prev > 2.5 * stepMs) for (const k of KEYS) next[k].push([prev + stepMs, null]);
        prev = t;
        const row = [p.cpuPercent, p.memoryBytes, p.memoryLimitBytes, p.netRxBytes, p.netTxBytes, p.blockReadBytes, p.blockWriteBytes];
        row.forEach((v, i) => next[KEYS[i]].push([t, v]));
      }
      // Live points newer than the stored ones stay.
      for (const k of KEYS) {
        const end = next[k].at(-1)?.[0] ?? -Infinity;
        next[k].push(...data[k].filter((p) => p.live && p[0] > end));
      }
      data = next;
      status.textContent = series.points?.length ? '' : 'No samples stored for this range yet: live ones appear at each collection cycle.';
      render();
    } catch (err) {
      if (g === loads && !gone) status.textContent = `Could not load metrics: ${err.message}`;
    }
  }

  function livePoint(m) {
    const t = Date.parse(m.timestamp);
    const cs = m.containerMetrics ?? [];
    const c = cs.find((x) => x.cpuPercentOfLimit > 0 && x.cpuPercent > 0);
    if (c) cores = Math.max(1, Math.round(c.cpuPercent / c.cpuPercentOfLimit));
    const values = [m.aggregated?.totalCpu ?? sum(cs, 'cpuPercent'), m.aggregated?.totalMemory ?? sum(cs, 'memoryBytes')];
    for (const f of ['memoryLimitBytes', 'netRxBytes', 'netTxBytes', 'blockReadBytes', 'blockWriteBytes']) values.push(sum(cs, f));
    KEYS.forEach((k, i) => {
      const list = data[k];
      if (list.at(-1)?.[0] >= t) return;
      list.push(Object.assign([t, values[i]], { live: true }));
      // No more than the longest range holds.
      if (list.length > 12000) list.splice(0, list.length - 12000);
    });
    if (status.textContent.startsWith('No samples')) status.textContent = '';
    render();
  }

  const live = stream('/ws/metrics', { type: 'subscribe', app: owner ? `${owner}/${name}` : name }, {
    onMessage(m) {
      if (gone) return;
      if (m.type === 'metrics') livePoint(m);
      // Resubscribed after a reconnect: what was missed is stored by now.
      else if (m.type === 'subscribed' && subscribed) load();
      else if (m.type === 'subscribed') subscribed = true;
      else if (m.type === 'error') status.textContent = `Live updates: ${m.message}`;
    },
  });
  load();

  return {
    unmount() {
      gone = true;
      live.close();
      for (const c of Object.values(charts)) c.destroy();
      root.remove();
    },
  };
}
