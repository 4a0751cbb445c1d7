// DOM and formatting helpers. API data reaches the page only as text nodes and
// attributes: nothing here writes innerHTML.

function build(node, attrs, kids) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    // A style attribute would break the CSP: classes, or el.style.x in code.
    else if (k === 'style') throw new Error('no style attributes');
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  add(node, kids);
  return node;
}

function add(node, kids) {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) add(node, k);
    else node.append(k instanceof Node ? k : String(k));
  }
}

/** `el('a', {href, class, onclick}, 'text', child, [more])`: strings become text. */
export const el = (tag, attrs, ...kids) => build(document.createElement(tag), attrs, kids);
export const svg = (tag, attrs, ...kids) => build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, kids);

/** Replaces a node's children. */
export function fill(node, ...kids) {
  node.replaceChildren();
  add(node, kids);
  return node;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** How long ago: "45s", "3m", "2h", "4d". */
export function age(iso) {
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!iso || !Number.isFinite(s)) return '—';
  for (const [n, u] of [[86400, 'd'], [3600, 'h'], [60, 'm']]) if (s >= n) return `${Math.floor(s / n)}${u}`;
  return `${Math.max(0, Math.floor(s))}s`;
}

/** The age as a <time>, the exact time its tooltip. */
export const ago = (iso) => (iso ? el('time', {datetime: iso, title: when(iso)}, age(iso)) : el('span', {class: 'muted'}, '—'));
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

/** Binary units: "512 B", "1.5 KiB", "128 MiB". */
export function bytes(n) {
  if (n == null || !Number.isFinite(+n)) return '—';
  let v = +n, i = 0;
  while (v >= 1024 && i < 4) { v /= 1024; i++; }
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${['B', 'KiB', 'MiB', 'GiB', 'TiB'][i]}`;
}

export const percent = (v) => (v == null || !Number.isFinite(v) ? '—' : `${v < 10 ? v.toFixed(1) : Math.round(v)}%`);

const PHASES = ['pending', 'deploying', 'running', 'degraded', 'failed', 'stopped', 'terminating'];

/** An application phase as a badge: the text says it; the colour only repeats it. */
export function phaseBadge(phase) {
  const p = phase || 'Unknown';
  const key = PHASES.includes(p.toLowerCase()) ? p.toLowerCase() : 'unknown';
  return el('span', {class: `badge phase-${key}`, dataset: {phase: p}}, p);
}

/** Updates a phase badge in place (others may hold the element). */
export function setPhase(badge, phase) {
  const b = phaseBadge(phase);
  badge.className = b.className;
  badge.dataset.phase = b.dataset.phase;
  badge.textContent = b.textContent;
}

/** A revision's, container's or condition's status as a badge. */
export function statusBadge(status) {
  const t = String(status ?? 'unknown');
  return el('span', {class: `badge status-${t.toLowerCase().replace(/[^a-z]/g, '')}`, dataset: {status: t}}, t);
}

let dialog;

/**
 * Asks before acting; resolves true only for OK. A modal <dialog> keeps focus inside
 * and takes Escape as Cancel; unlike window.confirm it stops no timer or socket.
 */
export function confirmAction(message, {ok = 'Confirm', danger = false, detail = ''} = {}) {
  dialog ||= document.body.appendChild(el('dialog', {id: 'confirm-dialog', 'aria-labelledby': 'confirm-message'},
    el('form', {method: 'dialog'}, el('p', {id: 'confirm-message'}), el('p', {id: 'confirm-detail', class: 'muted'}),
      el('div', {class: 'actions'}, el('button', {id: 'confirm-cancel', value: 'cancel', class: 'secondary'}, 'Cancel'),
        el('button', {id: 'confirm-ok', value: 'ok'}, 'OK')))));
  $('#confirm-message', dialog).textContent = message;
  Object.assign($('#confirm-detail', dialog), {textContent: detail, hidden: !detail});
  const okB = $('#confirm-ok', dialog);
  okB.textContent = ok;
  okB.classList.toggle('danger', danger);
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), {once: true});
    dialog.showModal();
    // Something that cannot be undone must not be one Enter away.
    (danger ? $('#confirm-cancel', dialog) : okB).focus();
  });
}

/** Shows an error (ApiError or any Error) in `box`, with every bad field it names. */
export function showError(box, err) {
  if (!box) return;
  const lines = Object.entries(err?.fields || {}).map(([f, m]) => `${f}: ${m}`);
  if (err?.quota) lines.push(`quota ${err.quota.resource}: limit ${err.quota.limit}, requested ${err.quota.requested}`);
  const msg = err?.message || String(err);
  if (/^(P|SPAN)$/.test(box.tagName)) fill(box, [msg, ...lines].join(' — '));
  else if (box.tagName === 'UL') fill(box, [msg, ...lines].map((l) => el('li', {}, l)));
  else fill(box, el('p', {class: 'error-message'}, msg), lines.length ? el('ul', {class: 'error-fields'}, lines.map((l) => el('li', {}, l))) : null);
  box.hidden = false;
}

export function clearError(box) {
  if (box) { box.replaceChildren(); box.hidden = true; }
}

/** An admin's `?owner=` for another user's application. */
export const ownerParam = () => new URLSearchParams(location.search).get('owner') || '';
export const withOwner = (path, owner) => (owner ? `${path}${path.includes('?') ? '&' : '?'}owner=${encodeURIComponent(owner)}` : path);
export const short = (id, n = 12) => (id ? String(id).slice(0, n) : '—');

/**
 * Tabs that are real links (each tab's URL is a page of the server), switched in
 * place but for those in `load` (pages of their own, so that a page never carries
 * every tab's modules); a click with a modifier key still opens the link.
 * `onSwitch(tab)` runs for the first tab and every change, back and forward included.
 */
export function tabs(nav, first, onSwitch, query = '', load = []) {
  const links = $$('a[data-tab]', nav);
  let current;
  const show = (tab) => {
    current = tab;
    for (const a of links) a.dataset.tab === tab ? a.setAttribute('aria-current', 'page') : a.removeAttribute('aria-current');
    document.body.dataset.tab = tab;
    onSwitch(tab);
  };
  for (const a of links) {
    if (query) a.href = a.pathname + query;
    a.addEventListener('click', (ev) => {
      if (ev.button || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey || load.includes(a.dataset.tab)) return;
      ev.preventDefault();
      if (a.dataset.tab === current) return;
      history.pushState({tab: a.dataset.tab}, '', a.href);
      show(a.dataset.tab);
    });
  }
  addEventListener('popstate', () => {
    const tab = history.state?.tab || links.find((a) => a.pathname === location.pathname)?.dataset.tab || first;
    if (tab !== current) show(tab);
  });
  history.replaceState({tab: first}, '');
  show(first);
}

/** `fn` once calls stop coming for `ms`. */
export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

/** Runs the task functions at most `limit` at a time; each reports its own failure. */
export async function pool(tasks, limit) {
  const work = async () => { while (tasks.length) await tasks.shift()().catch(() => {}); };
  await Promise.all(Array.from({length: Math.min(limit, tasks.length)}, work));
}

/** A labelled input with room for its error (`#<id>-error`). */
export const field = (label, input, hint) => el('div', {class: 'field'}, el('label', {for: input.id}, label), input,
  hint && el('small', {class: 'muted'}, hint), el('span', {class: 'field-error', hidden: true, id: `${input.id}-error`}));
