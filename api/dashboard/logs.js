// The Logs tab: an application's output, history then live, from /ws/logs.
//
// A socket `log` message names its container (engine id), not its replica: replicas
// come from GET …/containers, read again when an unknown container speaks (a
// rollout, a replacement). The socket cannot resume from a time, so after a
// reconnect the subscription asks for no history (`tail: 0`) and the gap is read
// from GET …/logs?since= (JSON lines), a little early; lines already shown
// (container, time and text) are skipped. The socket may deliver a line the gap
// already returned well after the gap's answer, so the check is not limited to the
// seam: every line is checked against the last 10 000 shown.
import { api, accessToken } from './api.js';
import { stream } from './live.js';
import { LogView, h, tsKey } from './logview.js';

const TAIL = 500;
const STATES = { connecting: 'Connecting…', open: 'Live', reconnecting: 'Reconnecting…', closed: 'Disconnected' };

export function mountLogs(panel, app) {
  const { name, owner } = app.metadata;
  const topic = owner ? `${owner}/${name}` : name;
  const base = `/api/applications/${encodeURIComponent(name)}`;
  const ownerQ = owner ? `owner=${encodeURIComponent(owner)}` : '';

  const replicaSel = h('select', { id: 'lv-replica', class: 'lv-replica' }, h('option', { value: '' }, 'All'));
  const follow = h('input', { type: 'checkbox', id: 'lv-follow', class: 'lv-follow', checked: true });
  const stamps = h('input', { type: 'checkbox', id: 'lv-timestamps', class: 'lv-timestamps' });
  const search = h('input', { type: 'search', id: 'lv-search', class: 'lv-search', placeholder: 'Filter lines', 'aria-label': 'Filter lines' });
  const download = h('button', { type: 'button', id: 'lv-download', class: 'lv-download' }, 'Download');
  const status = h('span', { id: 'lv-status', class: 'lv-status', role: 'status' }, 'Connecting…');
  const bar = h('div', { class: 'lv-toolbar' }, h('label', {}, 'Replica ', replicaSel), h('label', {}, follow, ' Follow'), h('label', {}, stamps, ' Timestamps'), search, download, status);
  const box = h('div', { class: 'lv-box' });
  const root = h('div', { class: 'lv-panel' }, bar, box);
  panel.append(root);
  const view = new LogView(box, { sortByTs: true, onFollowChange: (on) => (follow.checked = on) });
  const say = (text) => (status.textContent = text);

  const replicas = new Map(); // engine container id → replica
  let replicaCount = Math.max(app.spec?.replicas ?? 1, app.status?.replicas ?? 0);
  let sel = ''; // '' = every replica
  let live = null;
  let sub = null;
  let gone = false;
  let gen = 0; // bumped by every restart: late answers of an older stream are dropped
  let recent = []; // ids (container, time, text) of the lines last seen, oldest first
  let seen = new Set(); // the same ids, to look up
  let newest = '';
  let newestTs = null;
  let subscribedAt = null;
  let filling = null; // socket lines held while a gap is read
  let held = []; // lines of containers not known yet
  let refreshTimer = 0;
  let lastRefresh = 0;

  async function loadContainers() {
    const list = await api('GET', `${base}/containers${ownerQ && `?${ownerQ}`}`);
    for (const c of list) if (c.dockerId) replicas.set(c.dockerId, c.replica);
    replicaCount = Math.max(replicaCount, ...list.map((c) => c.replica + 1));
    options();
  }

  function options() {
    for (let r = replicaSel.options.length - 1; r < replicaCount; r++) replicaSel.append(h('option', { value: String(r) }, `Replica ${r}`));
  }

  function wantContainers() {
    if (refreshTimer || gone) return;
    refreshTimer = setTimeout(async () => {
      // Failing, unknown containers' lines show without a replica.
      await loadContainers().catch(() => {});
      refreshTimer = 0;
      lastRefresh = Date.now();
      const lines = held;
      held = [];
      for (const m of lines) line(m, true);
    }, lastRefresh + 2000 - Date.now());
  }

  // A container's lines are not in strict time order, so "newer than the last one"
  // would lose some: lines are recognised by container, time and text instead.
  // Engine times have nanoseconds: two lines of one container with the same time
  // and text are one line read twice. A line without a time is never dropped.
  function seenBefore(cid, key, text) {
    if (!key) return false;
    const id = `${cid}\n${key}\n${text}`;
    if (seen.has(id)) return true;
    seen.add(id);
    recent.push(id);
    if (recent.length > 10000) for (const old of recent.splice(0, 5000)) seen.delete(old);
    return false;
  }

  function line(m, known = false) {
    const cid = m.containerId;
    if (m.replica != null) replicas.set(cid, m.replica);
    const r = replicas.get(cid);
    if (r === undefined && !known) {
      // Without its replica a line can be neither filtered nor labelled yet.
      if (held.length < 10000) held.push(m);
      return wantContainers();
    }
    const key = tsKey(m.timestamp);
    if (seenBefore(cid, key, m.line)) return;
    if (key > newest) [newest, newestTs] = [key, m.timestamp];
    if (sel !== '' && String(r) !== sel) return;
    view.append({ text: m.line, stream: m.stream, ts: m.timestamp ?? null, replica: sel === '' && replicaCount > 1 ? r ?? null : null, node: m.node ?? null });
  }

  function ended(m) {
    const r = m.replica ?? replicas.get(m.containerId);
    if (sel !== '' && r !== undefined && String(r) !== sel) return;
    const who = m.containerId ? `Container ${m.containerId.slice(0, 12)}${r !== undefined ? ` (replica ${r})` : ''}` : 'The log';
    view.note(`${who} ended: ${m.reason ?? m.message ?? ''}`);
  }

  function handle(m) {
    if (filling && m.type === 'log') return filling.length < 20000 ? filling.push(m) : filling.lost++;
    if (m.type === 'log') line(m);
    else if (m.type === 'lagged') view.note(`${m.dropped} lines lost here (the browser fell behind)`);
    else if (m.type === 'end') ended(m);
    else if (m.type === 'subscribed') subscribed();
    else if (m.type === 'error') view.note(say(`Error: ${m.message}`));
  }

  function subscribed() {
    if (!subscribedAt) {
      subscribedAt = new Date().toISOString();
      // Reconnects send this object again: from now on without history.
      sub.tail = 0;
      return;
    }
    const g = gen;
    filling = Object.assign([], { lost: 0 });
    // Early, as another container's lines may reach the server late.
    const since = new Date(Date.parse(newestTs ?? subscribedAt) - 2000).toISOString();
    say('Catching up…');
    gap(since)
      .catch((err) => g === gen && view.note(`Lines printed while disconnected could not be read (${err.message}).`))
      .finally(() => {
        if (g !== gen) return;
        const lines = filling;
        filling = null;
        for (const m of lines) handle(m);
        if (lines.lost) view.note(`${lines.lost} lines lost here (catching up took too long)`);
        say('Live');
      });
  }

  async function gap(since) {
    const g = gen;
    const q = new URLSearchParams({ since, tail: '10000' });
    if (owner) q.set('owner', owner);
    if (sel !== '') q.set('replica', sel);
    const res = await fetch(`${base}/logs?${q}`, { headers: { Accept: 'application/x-ndjson', Authorization: `Bearer ${await accessToken()}` } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.text();
    for (const text of g === gen ? body.split('\n') : []) {
      let m;
      try {
        m = JSON.parse(text);
      } catch {
        continue;
      }
      if (m.type === 'end') ended(m);
      else if (m.type === 'lagged') view.note(m.message);
      else if (m.containerId) line(m, true);
    }
  }

  function start() {
    live?.close();
    const g = ++gen;
    view.clear();
    [recent, seen, newest, newestTs, subscribedAt, filling, held] = [[], new Set(), '', null, null, null, []];
    sub = { type: 'subscribe', app: topic, tail: TAIL };
    live = stream('/ws/logs', sub, {
      onMessage: (m) => g === gen && handle(m),
      onState: (s) => g === gen && !filling && say(STATES[s] ?? s),
    });
  }

  replicaSel.addEventListener('change', () => {
    sel = replicaSel.value;
    start();
  });
  follow.addEventListener('change', () => view.setFollow(follow.checked));
  stamps.addEventListener('change', () => view.setShowTimestamps(stamps.checked));
  let searchTimer = 0;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => view.setFilter(search.value), 150);
  });
  download.addEventListener('click', () => view.download(`${name}${sel && `-r${sel}`}-logs.txt`));

  options();
  // Replicas first, so that history lines are labelled as they come.
  loadContainers()
    .catch(() => {})
    .then(() => {
      lastRefresh = Date.now();
      if (!gone) start();
    });

  return {
    view,
    unmount() {
      gone = true;
      gen++;
      live?.close();
      clearTimeout(refreshTimer);
      clearTimeout(searchTimer);
      view.destroy();
      root.remove();
    },
  };
}
