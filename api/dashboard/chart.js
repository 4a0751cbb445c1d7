// Time-series charts as SVG, CSP-clean: classes for looks, CSSOM only to place the
// tooltip. Series differ by dash pattern as well as by colour.
import { h } from './logview.js';

const PAD = { l: 64, r: 12, t: 10, b: 24 };
const MIN = 60e3;
const HOUR = 60 * MIN;
const STEPS = [10e3, 30e3, MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 48 * HOUR];

function s(tag, attrs = {}, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

const num = (n, i) => (i === 0 || Math.abs(n) >= 100 ? Math.round(n) : n.toFixed(Math.abs(n) >= 10 ? 1 : 2));

export function fmtBytes(n, suffix = '') {
  if (n == null || !Number.isFinite(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; Math.abs(n) >= 1024 && i < 4; i++) n /= 1024;
  return `${num(n, i)} ${units[i]}${suffix}`;
}

export const fmtRate = (n) => fmtBytes(n, '/s');
export const fmtPct = (n) => (n == null || !Number.isFinite(n) ? '–' : `${num(n)} %`);

// A round axis top: 1, 2, 2.5 or 5 times a power of ten (of a power of 1024 for bytes).
function niceTop(v, binary) {
  if (!(v > 0)) return 1;
  const unit = binary && v >= 1024 ? 1024 ** Math.floor(Math.log(v) / Math.log(1024)) : 1;
  const p = 10 ** Math.floor(Math.log10(v / unit));
  return unit * p * ([1, 2, 2.5, 5].find((m) => m * p >= v / unit) ?? 10);
}

const pad2 = (n) => String(n).padStart(2, '0');

function timeLabel(t, step) {
  const d = new Date(t);
  if (step >= 24 * HOUR) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}${step < MIN ? `:${pad2(d.getSeconds())}` : ''}`;
}

// The index of the point of `pts` (sorted by time) nearest to time `t`.
function nearest(pts, t) {
  let [lo, hi] = [0, pts.length - 1];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pts[mid][0] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && t - pts[lo - 1][0] < pts[lo][0] - t ? lo - 1 : lo;
}

/**
 * A line chart. Options: `series` [{name, points: [[tMillis, value]]}] (null breaks
 * the line), `format(value)`, `height`, `yMax` (least axis top), `binary` (bytes),
 * `limit` {value, label} (a horizontal line), `xRange` [t0, t1] (least time span),
 * `label` (accessible name), `empty` (text without samples).
 */
export function lineChart(container, options) {
  const o = { height: 200, format: String, series: [], ...options };
  const root = h('div', { class: 'ch' });
  const legend = h('ul', { class: 'ch-legend' });
  const svg = s('svg', { class: 'ch-svg', tabindex: '0', role: 'img', 'aria-label': o.label ?? 'Chart' });
  const tip = h('div', { class: 'ch-tip', role: 'status', hidden: true });
  const empty = h('p', { class: 'ch-empty', hidden: true }, o.empty ?? 'No samples yet.');
  root.append(legend, svg, tip, empty);
  container.append(root);
  let width = root.clientWidth || 600;
  let sc = null; // the scales of the last drawing
  let timeline = [];
  let at = -1;
  let names = null;

  function draw() {
    let [t0, t1, vmax] = [Infinity, -Infinity, 0];
    for (const ser of o.series) {
      for (const [t, v] of ser.points) {
        if (v == null) continue;
        [t0, t1, vmax] = [Math.min(t0, t), Math.max(t1, t), Math.max(vmax, v)];
      }
    }
    const none = t0 === Infinity;
    root.classList.toggle('ch-none', none);
    empty.hidden = !none;
    svg.replaceChildren();
    sc = null;
    if (none) return hide();
    if (o.xRange) [t0, t1] = [Math.min(t0, o.xRange[0]), Math.max(t1, o.xRange[1])];
    t0 = Math.min(t0, t1 - MIN);
    const top = niceTop(Math.max(vmax * 1.05, o.limit?.value ?? 0, o.yMax ?? 0), o.binary);
    const [W, H] = [width, o.height];
    const pw = W - PAD.l - PAD.r;
    const ph = H - PAD.t - PAD.b;
    const X = (t) => (PAD.l + ((t - t0) / (t1 - t0)) * pw).toFixed(1);
    const Y = (v) => (PAD.t + ph - (v / top) * ph).toFixed(1);
    sc = { X, Y, t0, t1, pw };
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const axes = s('g', { class: 'ch-axes', 'aria-hidden': 'true' });
    for (let k = 0; k <= 4; k++) {
      const y = Y((top * k) / 4);
      axes.append(s('line', { class: 'ch-grid', x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }), s('text', { class: 'ch-ylabel', x: PAD.l - 6, y, dy: '0.35em' }, o.format((top * k) / 4)));
    }
    const step = STEPS.find((st) => st >= (t1 - t0) / Math.max(2, Math.floor(pw / 90))) ?? 48 * HOUR;
    // Ticks at round local times (days at local midnight).
    const off = new Date(t0).getTimezoneOffset() * MIN;
    for (let t = Math.ceil((t0 - off) / step) * step + off; t <= t1; t += step) {
      const x = X(t);
      axes.append(s('line', { class: 'ch-tick', x1: x, x2: x, y1: PAD.t + ph, y2: PAD.t + ph + 4 }), s('text', { class: 'ch-xlabel', x, y: H - 6 }, timeLabel(t, step)));
    }
    svg.append(axes);
    if (o.limit?.value > 0) {
      const y = Y(o.limit.value);
      svg.append(s('line', { class: 'ch-limit', x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }), s('text', { class: 'ch-limit-label', x: W - PAD.r - 4, y: y - 4 }, o.limit.label ?? o.format(o.limit.value)));
    }
    o.series.forEach((ser, i) => {
      let d = '';
      const P = ser.points;
      P.forEach(([t, v], k) => {
        if (v == null) return;
        d += `${P[k - 1]?.[1] == null ? 'M' : 'L'}${X(t)} ${Y(v)}`;
        // A point alone between gaps draws nothing as a path: a dot shows it.
        if (P[k - 1]?.[1] == null && P[k + 1]?.[1] == null) svg.append(s('circle', { class: `ch-dot ch-s${i % 4}`, cx: X(t), cy: Y(v), r: 3 }));
      });
      svg.append(s('path', { class: `ch-line ch-s${i % 4}`, d, 'data-series': ser.name }));
    });
    timeline = o.series.reduce((a, b) => (b.points.length > a.length ? b.points : a), []);
    if (at >= 0) show(at);
  }

  function drawLegend() {
    const key = o.series.map((x) => x.name).join('\n');
    if (key === names) return;
    names = key;
    legend.replaceChildren(
      ...o.series.map((ser, i) => {
        const sample = s('svg', { class: 'ch-key', viewBox: '0 0 28 8', 'aria-hidden': 'true' });
        sample.append(s('line', { class: `ch-line ch-s${i % 4}`, x1: 0, x2: 28, y1: 4, y2: 4 }));
        return h('li', {}, sample, ser.name);
      }),
    );
  }

  function show(i) {
    if (!sc || !timeline.length) return hide();
    at = Math.max(0, Math.min(i, timeline.length - 1));
    const t = timeline[at][0];
    const x = sc.X(t);
    svg.querySelectorAll('.ch-cross, .ch-hover').forEach((e) => e.remove());
    svg.append(s('line', { class: 'ch-cross', x1: x, x2: x, y1: PAD.t, y2: o.height - PAD.b }));
    const rows = [h('div', { class: 'ch-tip-time' }, new Date(t).toLocaleString())];
    o.series.forEach((ser, k) => {
      if (!ser.points.length) return;
      const [pt, v] = ser.points[nearest(ser.points, t)];
      if (v != null) svg.append(s('circle', { class: `ch-hover ch-dot ch-s${k % 4}`, cx: sc.X(pt), cy: sc.Y(v), r: 4 }));
      rows.push(h('div', {}, `${ser.name}: ${v == null ? '–' : o.format(v)}`));
    });
    tip.replaceChildren(...rows);
    tip.hidden = false;
    tip.classList.toggle('ch-tip-left', x > width / 2);
    tip.style.left = `${(x / width) * (svg.clientWidth || width)}px`;
  }

  function hide() {
    at = -1;
    tip.hidden = true;
    svg.querySelectorAll('.ch-cross, .ch-hover').forEach((e) => e.remove());
  }

  svg.addEventListener('pointermove', (e) => {
    if (!sc) return;
    const r = svg.getBoundingClientRect();
    const x = ((e.clientX - r.left) / r.width) * width;
    show(nearest(timeline, sc.t0 + ((x - PAD.l) / sc.pw) * (sc.t1 - sc.t0)));
  });
  svg.addEventListener('pointerleave', () => document.activeElement !== svg && hide());
  svg.addEventListener('focus', () => show(at >= 0 ? at : timeline.length - 1));
  svg.addEventListener('blur', hide);
  svg.addEventListener('keydown', (e) => {
    const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: timeline.length - 1 }[e.key];
    if (e.key === 'Escape') hide();
    else if (to !== undefined) show(to);
    else return;
    e.preventDefault();
  });
  const resize = new ResizeObserver(() => {
    const w = root.clientWidth;
    if (w && Math.abs(w - width) > 1) {
      width = w;
      draw();
    }
  });
  resize.observe(root);
  drawLegend();
  draw();

  return {
    /** New series, and options to change (`limit`, `xRange`…). */
    update(series, more = {}) {
      Object.assign(o, more, { series });
      drawLegend();
      draw();
    },
    append(i, point) {
      o.series[i].points.push(point);
      draw();
    },
    destroy() {
      resize.disconnect();
      root.remove();
    },
  };
}

/** A small line of `points` ([[t, v]] or [v]) for lists: no axes, no interaction. */
export function sparkline(points, { width = 120, height = 28, max } = {}) {
  const svg = s('svg', { class: 'ch-spark', viewBox: `0 0 ${width} ${height}`, width, height, 'aria-hidden': 'true' });
  const vals = points.map((p) => (Array.isArray(p) ? p[1] : p));
  const top = max ?? Math.max(0, ...vals.filter((v) => v != null));
  const dx = width / Math.max(1, vals.length - 1);
  let d = '';
  let pen = 'M';
  vals.forEach((v, i) => {
    d += v == null ? '' : `${pen}${(i * dx).toFixed(1)} ${(height - 1 - (top > 0 ? Math.min(v, top) / top : 0) * (height - 2)).toFixed(1)}`;
    pen = v == null ? 'M' : 'L';
  });
  svg.append(s('path', { class: 'ch-spark-line', d: d || `M0 ${height - 1}H${width}` }));
  return svg;
}
