// Terminal output as styled segments: a log line should look the way a terminal
// left it (colours, progress bars redrawn with \r). Pure except renderAnsi, which
// builds nodes, never HTML: log text is attacker-controlled.

// Anything that is not plain text or a tab: lines without it skip the parser.
const SPECIAL = /[\x00-\x08\x0a-\x1f\x7f\x9b]/;
const NONE = Object.freeze({});

// xterm's 256 colours: 0-15 stay classes (themeable), the rest are fixed RGB.
function xterm(n) {
  if (!(n >= 0 && n <= 255)) return undefined;
  if (n < 16) return n;
  if (n >= 232) {
    const g = 8 + (n - 232) * 10;
    return `rgb(${g},${g},${g})`;
  }
  const level = (v) => (v ? 55 + v * 40 : 0);
  n -= 16;
  return `rgb(${level(Math.floor(n / 36))},${level(Math.floor(n / 6) % 6)},${level(n % 6)})`;
}

function rgb(r, g, b) {
  const c = [r, g, b].map((v) => Math.min(255, Math.max(0, v | 0)));
  return [r, g, b].every(Number.isFinite) ? `rgb(${c.join(',')})` : undefined;
}

/** The style after SGR parameters `params` (e.g. "1;31"), as a new object. */
export function sgr(style, params) {
  let s = { ...style };
  const a = params.split(';').map(Number);
  for (let k = 0; k < a.length; k++) {
    const v = a[k];
    if (v === 0) s = {};
    else if (v >= 1 && v <= 4) s['bdiu'[v - 1]] = true;
    else if (v === 22) s.b = s.d = false;
    else if (v === 23 || v === 24) s['iu'[v - 23]] = false;
    else if (v === 39 || v === 49) delete s[v === 39 ? 'fg' : 'bg'];
    else if (v === 38 || v === 48) {
      const c = a[k + 1] === 5 ? xterm(a[k + 2]) : a[k + 1] === 2 ? rgb(a[k + 2], a[k + 3], a[k + 4]) : undefined;
      if (c !== undefined) s[v === 38 ? 'fg' : 'bg'] = c;
      k += a[k + 1] === 5 ? 2 : a[k + 1] === 2 ? 4 : 0;
    } else if (v >= 30 && v <= 37) s.fg = v - 30;
    else if (v >= 90 && v <= 97) s.fg = v - 82;
    else if (v >= 40 && v <= 47) s.bg = v - 40;
    else if (v >= 100 && v <= 107) s.bg = v - 92;
  }
  return s;
}

function segment(text, s) {
  const classes = [];
  let style = null;
  for (const [key, prop] of [['fg', 'color'], ['bg', 'backgroundColor']]) {
    if (typeof s[key] === 'number') classes.push(`lv-${key}-${s[key]}`);
    else if (s[key]) (style ??= {})[prop] = s[key];
  }
  for (const k of 'bdiu') if (s[k]) classes.push(`lv-${k}`);
  return { text, classes, style };
}

/**
 * One line of terminal output as `[{text, classes, style}]`: classes `lv-fg-N`,
 * `lv-bg-N` (N 0-15), `lv-b|d|i|u`; style null or `{color?, backgroundColor?}` (256
 * and true colour). `\r` and `\b` move the cursor, later text overwrites, CSI K
 * erases; every other escape is dropped.
 */
export function parseAnsi(text) {
  if (!SPECIAL.test(text)) return text ? [segment(text, NONE)] : [];
  // A cell per column: overwriting is assignment.
  const chars = [];
  const styles = [];
  let col = 0;
  let st = NONE;
  const n = text.length;
  for (let i = 0; i < n; ) {
    const c = text.charCodeAt(i);
    if (c === 0x1b || c === 0x9b) {
      const next = text[i + 1];
      if (c === 0x9b || next === '[') {
        let j = i + (c === 0x9b ? 1 : 2);
        const start = j;
        while (j < n && (text.charCodeAt(j) < 0x40 || text.charCodeAt(j) > 0x7e)) j++;
        const params = text.slice(start, j);
        if (text[j] === 'm') st = sgr(st, params);
        else if (text[j] === 'K') {
          if (params === '2') chars.length = styles.length = 0;
          else if (params === '1') for (let k = 0; k <= col; k++) (chars[k] = ' '), (styles[k] = NONE);
          else if (col < chars.length) chars.length = styles.length = col;
        }
        i = j + 1;
      } else if (next === ']' || next === 'P' || next === 'X' || next === '^' || next === '_') {
        // A string (title, hyperlink target…) up to BEL or ST.
        let j = i + 2;
        while (j < n && text.charCodeAt(j) !== 7 && !(text.charCodeAt(j) === 0x1b && text[j + 1] === '\\')) j++;
        i = text.charCodeAt(j) === 7 ? j + 1 : j + 2;
      } else {
        let j = i + 1;
        while (j < n && text.charCodeAt(j) >= 0x20 && text.charCodeAt(j) <= 0x2f) j++;
        i = j + 1;
      }
      continue;
    }
    i++;
    if (c === 13) col = 0;
    else if (c === 8) col = Math.max(0, col - 1);
    else if ((c < 32 && c !== 9) || c === 0x7f) continue;
    else {
      chars[col] = text[i - 1];
      styles[col++] = st;
    }
  }
  const out = [];
  let run = '';
  let runStyle = null;
  for (let k = 0; k < chars.length; k++) {
    const s = styles[k] ?? NONE;
    if (s !== runStyle && run) {
      out.push(segment(run, runStyle));
      run = '';
    }
    runStyle = s;
    run += chars[k] ?? ' ';
  }
  if (run) out.push(segment(run, runStyle));
  return out;
}

/** What a terminal would show of `text`: escapes dropped, `\r` and `\b` applied. */
export function applyCarriageReturns(text) {
  if (!SPECIAL.test(text)) return text;
  let out = '';
  for (const s of parseAnsi(text)) out += s.text;
  return out;
}

/** Appends `text`'s segments to `parent` as text nodes and spans; returns the visible text. */
export function renderAnsi(parent, text) {
  let plain = '';
  for (const s of parseAnsi(text)) {
    plain += s.text;
    if (!s.classes.length && !s.style) {
      parent.append(s.text);
      continue;
    }
    const span = parent.ownerDocument.createElement('span');
    if (s.classes.length) span.className = s.classes.join(' ');
    // CSSOM, not a style attribute: the CSP forbids the latter.
    if (s.style) Object.assign(span.style, s.style);
    span.textContent = s.text;
    parent.append(span);
  }
  return plain;
}
