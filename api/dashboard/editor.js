// The YAML editor: a textarea with line numbers, applied through the same endpoint
// as `longin apply -f`. Errors point at their line: the server's own for a document
// that does not parse, and for a field error the line its path leads to.

import {api, isAdmin} from './api.js';
import {$, clearError, el, fill, ownerParam, showError, withOwner} from './util.js';

let yaml, gutter, numbers = [], marked = new Set();

function lineCount() {
  let n = 1;
  for (let i = yaml.value.indexOf('\n'); i !== -1; i = yaml.value.indexOf('\n', i + 1)) n++;
  return n;
}

function renderGutter() {
  const n = lineCount();
  if (n === numbers.length) return;
  if (n > numbers.length) {
    const frag = document.createDocumentFragment();
    for (let i = numbers.length + 1; i <= n; i++) {
      const s = el('span', {class: marked.has(i) ? 'ln err' : 'ln'}, String(i));
      numbers.push(s);
      frag.append(s, '\n');
    }
    gutter.append(frag);
  } else {
    numbers.splice(n);
    // Each number is followed by its newline text node.
    while (gutter.childNodes.length > n * 2) gutter.lastChild.remove();
  }
  gutter.scrollTop = yaml.scrollTop;
}

function mark(lines) {
  marked = new Set(lines);
  numbers.forEach((s, i) => s.classList.toggle('err', marked.has(i + 1)));
}

/** Puts the cursor at the start of `line` (1-based), selecting the line, in view. */
function goToLine(line) {
  const lines = yaml.value.split('\n');
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  yaml.focus();
  yaml.setSelectionRange(start, start + (lines[line - 1] || '').length);
  const lh = parseFloat(getComputedStyle(yaml).lineHeight) || 20;
  yaml.scrollTop = Math.max(0, (line - 1) * lh - yaml.clientHeight / 3);
  gutter.scrollTop = yaml.scrollTop;
}

// From a field path (`spec.env[1].name`, `[2].spec.replicas`) to its line.
// Block-style YAML only (what people write and what the server returns); a path into
// flow style (`{a: 1}`) ends at the deepest line found.

const indentOf = (l) => l.length - l.trimStart().length;
const blank = (l) => !l.trim() || l.trimStart().startsWith('#');
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function segments(path) {
  const out = [];
  for (const part of path.split('.')) {
    const m = part.match(/^([^[]*)((?:\[\d+\])*)$/);
    if (!m) { out.push(part); continue; }
    if (m[1]) out.push(m[1]);
    for (const i of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(i[1]));
  }
  return out;
}

/** Where the children of the entry at line `at` (its content at column `col`) end. */
function childEnd(lines, at, col, to, item) {
  let end = at + 1;
  for (; end < to; end++) {
    const l = lines[end];
    if (blank(l)) continue;
    const ind = indentOf(l);
    // An item's keys line up with its first one; a key's children sit deeper, but a
    // list may sit at its key's own column (`env:` then `- name: …`).
    if (ind < col || (!item && ind === col && !l.trimStart().startsWith('- '))) break;
  }
  return end;
}

const KEY = /^(\s*(?:-\s+)*)(["']?)([^\s"'#:][^:#]*?)\2\s*:(\s|$)/;

/** The line and column of `key` at the shallowest mapping level in [from, to). */
function findKey(lines, from, to, key) {
  let level = Infinity;
  let hit = null;
  for (let i = from; i < to; i++) {
    if (blank(lines[i])) continue;
    const m = lines[i].match(KEY);
    if (!m) continue;
    const col = m[1].length;
    if (col < level) { level = col; hit = null; }
    if (col === level && !hit && m[3] === key) hit = [i, col];
  }
  return hit;
}

/** The line of the `n`th item of the shallowest list in [from, to). */
function findItem(lines, from, to, n) {
  let level = Infinity;
  let items = [];
  for (let i = from; i < to; i++) {
    if (blank(lines[i])) continue;
    const t = lines[i].trimStart();
    if (!t.startsWith('- ') && t !== '-') continue;
    const col = indentOf(lines[i]);
    if (col < level) { level = col; items = []; }
    if (col === level) items.push(i);
  }
  return items[n] != null ? [items[n], level + 2] : null;
}

function locate(text, path) {
  const lines = text.split('\n');
  const starts = [0];
  lines.forEach((l, i) => { if (/^---(\s|$)/.test(l)) starts.push(i + 1); });
  const segs = segments(path);
  let doc = 0;
  if (typeof segs[0] === 'number' && starts.length > 1) doc = segs.shift();
  if (doc >= starts.length) return null;
  let from = starts[doc];
  let to = doc + 1 < starts.length ? starts[doc + 1] - 1 : lines.length;
  if (!segs.length || segs[0] === 'document' || segs[0] === 'body') {
    while (from < to && blank(lines[from])) from++;
    return from + 1;
  }
  let found = null;
  for (const seg of segs) {
    let hit = typeof seg === 'number' ? findItem(lines, from, to, seg) : findKey(lines, from, to, seg);
    let item = typeof seg === 'number';
    if (!hit && typeof seg === 'string') {
      // `spec.env.NAME.value`: a list entry named by its `name`.
      const re = new RegExp(`^\\s*(-\\s+)?name:\\s*["']?${esc(seg)}["']?\\s*$`);
      for (let i = from; i < to && !hit; i++) {
        if (re.test(lines[i])) {
          const dash = lines[i].trimStart().startsWith('- ');
          hit = [i, indentOf(lines[i]) + (dash ? 2 : 0)];
          item = dash;
        }
      }
    }
    if (!hit) break;
    found = hit[0];
    to = childEnd(lines, hit[0], hit[1], to, item);
    // An item's first key shares its line (`- name: x`); a key's children start below.
    from = item ? hit[0] : hit[0] + 1;
  }
  return found == null ? null : found + 1;
}

// Applying.

function showErrors(err) {
  const list = $('#editor-errors');
  const items = [];
  const lines = [];
  if (err.line) {
    lines.push(err.line);
    items.push({line: err.line, text: /\bline \d/.test(err.message) ? err.message : `Line ${err.line}: ${err.message}`});
  } else {
    const fields = Object.entries(err.fields || {});
    if (!fields.length || err.code !== 'validation_failed') items.push({text: err.message});
    for (const [path, message] of fields) {
      const line = locate(yaml.value, path);
      if (line) lines.push(line);
      items.push({line, path, text: `${path}: ${message}${line ? ` (line ${line})` : ''}`});
    }
    if (err.quota) items.push({text: `Quota ${err.quota.resource}: limit ${err.quota.limit}, requested ${err.quota.requested}`});
  }
  fill(list, items.map((it) => el('li', {dataset: {path: it.path, line: it.line}},
    it.line ? el('button', {type: 'button', class: 'link goto', onclick: () => goToLine(it.line)}, it.text) : it.text)));
  list.hidden = false;
  mark(lines);
}

function resultOf(results, owner) {
  const out = $('#editor-result');
  fill(out, 'Applied: ', results.map((r, i) => [i ? ', ' : '',
    el('a', {href: withOwner(`/apps/${encodeURIComponent(r.name)}`, owner), class: 'result-app', dataset: {action: r.action}}, r.name),
    ` ${r.action}`]), '.');
  out.hidden = false;
}

/** The server's document without what only the server writes (status, ids, times). */
function editable(text) {
  const out = [];
  let skipping = false;
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) skipping = /^status:/.test(line);
    if (skipping) continue;
    if (/^  (owner|uid|generation|creationTimestamp|deletionTimestamp):/.test(line)) continue;
    out.push(line);
  }
  return out.join('\n').replace(/\n+$/, '\n');
}

export async function start() {
  yaml = $('#yaml');
  gutter = $('#gutter');
  // One text line per gutter line: wrapping would break the numbering.
  yaml.wrap = 'off';
  const name = document.body.dataset.app;
  const owner = ownerParam();
  const form = $('#editor-form');
  const result = $('#editor-result');
  const errors = $('#editor-errors');

  yaml.addEventListener('input', () => { renderGutter(); mark([]); });
  yaml.addEventListener('scroll', () => { gutter.scrollTop = yaml.scrollTop; });
  yaml.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
  });

  if (name) {
    yaml.disabled = true;
    try {
      const text = await api('GET', withOwner(`/api/applications/${encodeURIComponent(name)}`, owner), null, {accept: 'application/yaml'});
      yaml.value = editable(text);
      if (/^\s+secret: true/m.test(yaml.value)) {
        form.before(el('p', {id: 'editor-note', class: 'notice'},
          'Secret values are never sent back, so entries with ', el('code', {}, 'secret: true'),
          ' have no value here. Left without one they keep their stored value; give one to replace it.'));
      }
    } catch (err) {
      showError(errors, err);
      $('#apply').disabled = true;
    }
    yaml.disabled = false;
  }
  if (owner && isAdmin()) form.before(el('p', {class: 'notice muted'}, `Applying for ${owner}.`));
  renderGutter();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = $('#apply');
    button.disabled = true;
    clearError(errors);
    result.hidden = true;
    mark([]);
    try {
      const answer = await api('PUT', withOwner('/api/applications/apply', owner), yaml.value, {contentType: 'application/yaml'});
      const results = answer.results || [];
      resultOf(results, owner);
      // The next apply must carry the new resourceVersion, or it would be refused as stale.
      const rv = results.length === 1 ? results[0].application?.metadata?.resourceVersion : null;
      if (rv && (yaml.value.match(/^\s+resourceVersion:/gm) || []).length === 1) {
        yaml.value = yaml.value.replace(/^(\s+resourceVersion:).*$/m, `$1 '${rv}'`);
      }
    } catch (err) {
      showErrors(err);
    } finally {
      button.disabled = false;
    }
  });
}
