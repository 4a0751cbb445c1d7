// A log viewer that survives floods: lines wait in a bounded buffer and are drawn in
// batches on a timer (not requestAnimationFrame, which stops in background tabs
// while following must go on); the DOM never holds more than maxLines rows.
import { renderAnsi, applyCarriageReturns } from './ansi.js';

const FLUSH_MS = 100;

/** A tiny DOM builder: string attributes (`true`: present), children as text nodes. */
export function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null && v !== false) e.setAttribute(k, v === true ? '' : v);
  e.append(...kids);
  return e;
}

/** A sortable key of an engine time: it trims trailing zeros ("…:09Z", "…:09.5Z"). */
export function tsKey(ts) {
  const m = /^([^.]*?)(?:\.(\d+))?(z|[+-]\d\d:?\d\d)?$/i.exec(ts || '');
  return !ts || !m ? ts || '' : `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}${m[3]?.length > 1 ? m[3] : ''}`;
}

// Times of equal length compare as strings: the common case, and cheap.
const later = (a, b) => (a.length === b.length ? a >= b : tsKey(a) >= tsKey(b));
const pad = (n, w = 2) => String(n).padStart(w, '0');

// Engine times are UTC: the local date and time are formatted once per second.
let lastSecond = '';
let lastLocal = '';
function localTime(ts) {
  if (!ts?.endsWith('Z')) return ts || '';
  const second = ts.slice(0, 19);
  if (second !== lastSecond) {
    const d = new Date(`${second}Z`);
    if (Number.isNaN(d.getTime())) return ts;
    lastSecond = second;
    lastLocal = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  return `${lastLocal}.${ts[19] === '.' ? ts.slice(20, 23).replace(/\D.*/, '').padEnd(3, '0') : '000'}`;
}

function span(cls, text) {
  const s = document.createElement('span');
  s.className = cls;
  if (text) s.textContent = text;
  return s;
}

export class LogView {
  // `sortByTs`: batches in time order (containers' streams interleave).
  // `onFollowChange(on)`: the user scrolled away from the bottom, or back to it.
  constructor(container, { maxLines = 5000, sortByTs = false, onFollowChange = null } = {}) {
    Object.assign(this, { max: maxLines, sort: sortByTs, onFollowChange });
    this.root = h('div', { class: 'lv', role: 'log', 'aria-live': 'off', tabindex: '0', 'aria-label': 'Log lines' });
    this.olderNote = h('div', { class: 'lv-note lv-older', hidden: true });
    this.body = h('div', { class: 'lv-rows' });
    this.root.append(this.olderNote, this.body);
    container.append(this.root);
    this.rows = []; // {line, el, plain, low} in display order; a note's line is null
    this.pending = [];
    Object.assign(this, { older: 0, filter: '', follow: true, stamps: false, timer: 0, lastFlush: 0, cost: 0 });
    this.root.addEventListener('scroll', () => this.scrolled(), { passive: true });
  }

  append(line) {
    this.pending.push(line);
    this.queued();
  }

  appendMany(lines) {
    for (const l of lines) this.pending.push(l);
    this.queued();
  }

  /** A note row at this point of the stream (e.g. "12 lines lost here"). */
  note(text) {
    this.append({ note: String(text) });
  }

  queued() {
    // Trimmed in chunks, amortised O(1) a line: only the newest maxLines can show.
    if (this.pending.length > 2 * this.max) this.older += this.pending.splice(0, this.pending.length - this.max).length;
    if (this.timer) return;
    // ~10 flushes a second, fewer when drawing is slow: a flood leaves the thread free.
    const gap = Math.max(FLUSH_MS, 4 * this.cost);
    this.timer = setTimeout(() => this.flush(), this.lastFlush + gap - performance.now());
  }

  flush() {
    const t0 = performance.now();
    this.timer = 0;
    let batch = this.pending;
    this.pending = [];
    if (batch.length > this.max) {
      this.older += batch.length - this.max;
      batch = batch.slice(-this.max);
    }
    if (this.sort && !this.inOrder(batch)) {
      let key = '';
      const keyed = batch.map((e, i) => ({ e, i, k: e.note == null && e.ts ? (key = tsKey(e.ts)) : key }));
      keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.i - b.i));
      batch = keyed.map((x) => x.e);
    }
    const excess = this.rows.length + batch.length - this.max;
    if (excess > 0) {
      const gone = this.rows.splice(0, excess);
      const r = document.createRange();
      r.setStartBefore(gone[0].el);
      r.setEndAfter(gone[excess - 1].el);
      r.deleteContents();
      this.older += excess;
    }
    // One insertion per flush: slices cost a layout each, the larger part of a flush.
    const frag = document.createDocumentFragment();
    for (const e of batch) {
      const row = this.build(e);
      this.rows.push(row);
      frag.append(row.el);
    }
    this.body.append(frag);
    this.olderNote.hidden = !this.older;
    if (this.older) this.olderNote.textContent = `${this.older.toLocaleString()} older lines not shown`;
    // Layout now rather than at the next frame, so that its cost is counted.
    const height = this.root.scrollHeight;
    if (this.follow) this.root.scrollTop = height;
    this.lastFlush = performance.now();
    this.cost = this.lastFlush - t0;
    if (this.pending.length) this.queued();
  }

  inOrder(batch) {
    let prev = '';
    for (const e of batch) {
      if (!e.ts || e.note != null) continue;
      if (!later(e.ts, prev)) return false;
      prev = e.ts;
    }
    return true;
  }

  build(e) {
    const el = document.createElement('div');
    if (e.note != null) {
      el.className = 'lv-note';
      el.textContent = e.note;
      return { line: null, el };
    }
    // As few nodes as will do: stdout has no marker, times exist only while shown.
    const kind = e.stream === 'stderr' ? 'err' : e.stream === 'build' ? 'build' : '';
    el.className = kind ? `lv-row lv-${kind}` : 'lv-row';
    if (this.stamps) el.append(span('lv-t', localTime(e.ts)));
    if (e.replica != null) el.append(span('lv-r', `r${e.replica}`));
    // On Swarm: the node the line came from.
    if (e.node) el.append(span('lv-node', e.node));
    if (kind) el.append(span('lv-m', kind));
    const x = span('lv-x');
    const row = { line: e, el, plain: renderAnsi(x, e.text ?? ''), low: null };
    el.append(x);
    if (this.filter) el.hidden = !this.matches(row);
    return row;
  }

  matches(row) {
    return !row.line || (row.low ??= row.plain.toLowerCase()).includes(this.filter);
  }

  /** Shows only lines containing `text`, ignoring case (notes stay). */
  setFilter(text) {
    this.filter = String(text ?? '').toLowerCase();
    for (const r of this.rows) r.el.hidden = !this.matches(r);
    this.setFollow(this.follow);
  }

  setFollow(on) {
    this.follow = !!on;
    if (on) this.root.scrollTop = this.root.scrollHeight;
  }

  setShowTimestamps(on) {
    this.stamps = !!on;
    for (const r of this.rows) {
      const t = r.el.firstChild;
      if (!r.line) continue;
      if (on && t.className !== 'lv-t') r.el.prepend(span('lv-t', localTime(r.line.ts)));
      if (!on && t.className === 'lv-t') t.remove();
    }
    this.setFollow(this.follow);
  }

  scrolled() {
    const r = this.root;
    // Our own scrolls end at the bottom: only the user's leave it.
    const atBottom = r.scrollHeight - r.scrollTop - r.clientHeight < 8;
    if (atBottom !== this.follow) {
      this.follow = atBottom;
      this.onFollowChange?.(atBottom);
    }
  }

  clear() {
    clearTimeout(this.timer);
    Object.assign(this, { timer: 0, pending: [], rows: [], older: 0 });
    this.body.replaceChildren();
    this.olderNote.hidden = true;
  }

  /** The lines held, shown or waiting to be, oldest first. */
  lines() {
    return [...this.rows.map((r) => r.line), ...this.pending].filter((l) => l && l.note == null);
  }

  /** Saves the lines held as a text file. */
  download(filename = 'logs.txt') {
    const text = this.lines().map(
      (l) => `${l.ts ? `${l.ts} ` : ''}${l.replica != null ? `[r${l.replica}${l.node ? ` ${l.node}` : ''}] ` : ''}${l.stream === 'stderr' ? '[stderr] ' : ''}${applyCarriageReturns(l.text ?? '')}`,
    );
    if (this.older) text.unshift(`# ${this.older} older lines not included`);
    const url = URL.createObjectURL(new Blob([`${text.join('\n')}\n`], { type: 'text/plain;charset=utf-8' }));
    const a = h('a', { href: url, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    // Revoked once the click's download has taken the URL.
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  destroy() {
    clearTimeout(this.timer);
    this.root.remove();
  }
}
