// The admin pages: users (role, disable), the request audit log, the installation.

import {api, isAdmin, me} from './api.js';
import {$, ago, bytes, clearError, confirmAction, el, field, fill, showError, short, tabs, when} from './util.js';

const TITLES = {users: 'Users', audit: 'Audit log', system: 'System'};
let seq = 0;

function pager(prefix, go) {
  const prev = el('button', {id: `${prefix}-prev`, type: 'button', class: 'secondary', onclick: () => go(page - 1)}, '← Previous');
  const next = el('button', {id: `${prefix}-next`, type: 'button', class: 'secondary', onclick: () => go(page + 1)}, 'Next →');
  const info = el('span', {id: `${prefix}-page`, class: 'muted', 'aria-live': 'polite'});
  let page = 1;
  return {
    node: el('nav', {class: 'pager', 'aria-label': 'Pages'}, prev, info, next),
    update(p) {
      page = p.page;
      const pages = Math.max(1, Math.ceil(p.total / p.per_page));
      info.textContent = `Page ${p.page} of ${pages} · ${p.total} in all`;
      prev.disabled = p.page <= 1;
      next.disabled = p.page >= pages;
    },
  };
}

// --- Users. ------------------------------------------------------------------------

function users(panel, alive) {
  const error = el('div', {id: 'users-error', class: 'notice error', role: 'alert', hidden: true});
  const body = el('tbody', {id: 'users-body'});
  const pages = pager('users', (p) => load(p));
  panel.append(error, el('div', {class: 'table-wrap'}, el('table', {id: 'users'},
    el('thead', {}, el('tr', {}, ['Username', 'Email', 'Role', 'Status', 'Created', 'Last sign-in', 'Actions'].map((h) => el('th', {scope: 'col'}, h)))),
    body)), pages.node);

  const change = async (u, patch, question, detail) => {
    if (!(await confirmAction(question, {ok: 'Confirm', danger: patch.disabled === true, detail}))) return;
    clearError(error);
    try {
      const fresh = await api('PATCH', `/api/admin/users/${encodeURIComponent(u.id)}`, patch);
      Object.assign(u, fresh);
      const old = body.querySelector(`tr[data-user-id="${CSS.escape(u.id)}"]`);
      old?.replaceWith(userRow(u));
    } catch (err) {
      showError(error, err);
    }
  };

  function userRow(u) {
    const self = u.id === me().id;
    const why = self ? 'An admin cannot demote or disable themselves' : null;
    const toRole = u.role === 'admin' ? 'user' : 'admin';
    return el('tr', {dataset: {user: u.username, userId: u.id, role: u.role, disabled: String(u.disabled)}},
      el('th', {scope: 'row'}, u.username, self ? el('span', {class: 'muted'}, ' (you)') : null),
      el('td', {}, u.email),
      el('td', {class: 'col-role'}, el('span', {class: `badge role-${u.role}`}, u.role)),
      el('td', {class: 'col-status'}, el('span', {class: `badge ${u.disabled ? 'status-disabled' : 'status-active'}`}, u.disabled ? 'disabled' : 'active')),
      el('td', {}, ago(u.created_at)),
      el('td', {}, u.last_login ? ago(u.last_login) : el('span', {class: 'muted'}, 'never')),
      el('td', {class: 'row-actions'},
        el('button', {type: 'button', class: 'secondary small action-role', disabled: self, title: why,
          onclick: () => change(u, {role: toRole}, `Make ${u.username} ${toRole === 'admin' ? 'an admin' : 'a user'}?`,
            toRole === 'admin' ? 'Admins see and manage every account and application.' : 'They keep their own applications only.')},
        toRole === 'admin' ? 'Make admin' : 'Make user'),
        el('button', {type: 'button', class: `small action-disable ${u.disabled ? 'secondary' : 'danger'}`, disabled: self, title: why,
          onclick: () => change(u, {disabled: !u.disabled}, `${u.disabled ? 'Enable' : 'Disable'} ${u.username}?`,
            u.disabled ? 'They can sign in again.' : 'They are signed out everywhere and cannot sign in; their applications keep running.')},
        u.disabled ? 'Enable' : 'Disable')));
  }

  async function load(page = 1) {
    try {
      const p = await api('GET', `/api/admin/users?page=${page}&per_page=50`);
      if (!alive()) return;
      fill(body, p.items.map(userRow));
      pages.update(p);
    } catch (err) {
      if (alive()) showError(error, err);
    }
  }
  return load().then(() => ({}));
}

// --- Audit log. --------------------------------------------------------------------

const toLocalInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

async function audit(panel, alive) {
  const error = el('div', {id: 'audit-error', class: 'notice error', role: 'alert', hidden: true});
  const body = el('tbody', {id: 'audit-body'});
  const pages = pager('audit', (p) => load(p));
  const q = new URLSearchParams(location.search);
  const f = {
    method: el('select', {id: 'audit-method', name: 'method'}, ['', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => el('option', {value: m}, m || 'Any'))),
    route: el('input', {id: 'audit-route', name: 'route', type: 'search', placeholder: '/api/applications/{name}', autocomplete: 'off'}),
    status: el('input', {id: 'audit-status', name: 'status', type: 'number', min: 100, max: 599, placeholder: '404'}),
    user: el('select', {id: 'audit-user', name: 'user_id'}, el('option', {value: ''}, 'Anyone')),
    app: el('input', {id: 'audit-app', name: 'application_id', type: 'search', placeholder: 'application id', autocomplete: 'off'}),
    since: el('input', {id: 'audit-since', name: 'since', type: 'datetime-local'}),
    until: el('input', {id: 'audit-until', name: 'until', type: 'datetime-local'}),
  };
  const form = el('form', {id: 'audit-filter', class: 'filters', role: 'search'},
    field('Method', f.method), field('Route', f.route), field('Status', f.status), field('User', f.user),
    field('Application', f.app), field('Since', f.since), field('Until', f.until),
    el('div', {class: 'actions'}, el('button', {type: 'submit', id: 'audit-apply'}, 'Filter'),
      el('button', {type: 'reset', id: 'audit-clear', class: 'secondary'}, 'Clear')));
  panel.append(form, error, el('div', {class: 'table-wrap'}, el('table', {id: 'audit'},
    el('thead', {}, el('tr', {}, ['Time', 'Method', 'Route', 'Status', 'Duration', 'User', 'Application'].map((h) => el('th', {scope: 'col'}, h)))),
    body)), pages.node);

  // Names for the user ids the log records (and for the filter).
  const names = new Map();
  try {
    const list = await api('GET', '/api/admin/users?per_page=500');
    for (const u of list.items) {
      names.set(u.id, u.username);
      f.user.append(el('option', {value: u.id}, u.username));
    }
  } catch { /* ids are shown instead */ }
  if (!alive()) return {};

  f.method.value = q.get('method') || '';
  f.route.value = q.get('route') || '';
  f.status.value = q.get('status') || '';
  f.user.value = q.get('user_id') || '';
  f.app.value = q.get('application_id') || '';
  f.since.value = toLocalInput(q.get('since'));
  f.until.value = toLocalInput(q.get('until'));

  const filters = () => {
    const p = new URLSearchParams();
    for (const [k, i] of Object.entries({method: f.method, route: f.route, status: f.status, user_id: f.user, application_id: f.app})) {
      if (i.value.trim()) p.set(k, i.value.trim());
    }
    // datetime-local is the user's local time; the API wants an instant.
    if (f.since.value) p.set('since', new Date(f.since.value).toISOString());
    if (f.until.value) p.set('until', new Date(f.until.value).toISOString());
    return p;
  };

  async function load(page = 1) {
    clearError(error);
    const p = filters();
    if (page > 1) p.set('page', page);
    history.replaceState(history.state, '', `${location.pathname}${p.toString() ? `?${p}` : ''}`);
    p.set('per_page', '50');
    try {
      const res = await api('GET', `/api/admin/api-logs?${p}`);
      if (!alive()) return;
      fill(body, res.items.length ? res.items.map((r) => el('tr', {dataset: {id: r.id}},
        el('td', {}, el('time', {datetime: r.created_at}, when(r.created_at))),
        el('td', {}, el('code', {}, r.method)),
        el('td', {}, el('code', {class: 'route'}, r.route)),
        el('td', {}, el('span', {class: `badge http-${String(r.status)[0]}xx`}, String(r.status))),
        el('td', {class: 'num'}, `${r.duration_ms.toFixed(1)} ms`),
        el('td', {}, r.user_id ? (names.get(r.user_id) || el('code', {title: r.user_id}, short(r.user_id, 8))) : el('span', {class: 'muted'}, '—')),
        el('td', {}, r.application_id ? el('code', {title: r.application_id}, short(r.application_id, 8)) : el('span', {class: 'muted'}, '—'))))
        : el('tr', {}, el('td', {colspan: 7, class: 'muted'}, 'No request matches.')));
      pages.update(res);
    } catch (err) {
      if (alive()) showError(error, err);
    }
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(1); });
  form.addEventListener('reset', () => setTimeout(() => load(1)));
  await load(Number(q.get('page')) || 1);
  return {};
}

// --- System. -----------------------------------------------------------------------

async function system(panel, alive) {
  const error = el('div', {id: 'system-error', class: 'notice error', role: 'alert', hidden: true});
  const list = el('dl', {id: 'system', class: 'summary'});
  const refresh = el('button', {id: 'system-refresh', type: 'button', class: 'secondary', onclick: () => load()}, 'Refresh');
  // The machines applications run on: the Swarm's nodes, or the one local engine.
  const nodesTitle = el('h2', {id: 'nodes-title'}, 'Nodes');
  const nodesMode = el('p', {id: 'nodes-mode', class: 'muted'});
  const nodesBody = el('tbody', {id: 'nodes-body'});
  const nodesError = el('div', {id: 'nodes-error', class: 'notice error', role: 'alert', hidden: true});
  panel.append(el('div', {class: 'actions'}, refresh), error, list, nodesTitle, nodesMode, nodesError,
    el('div', {class: 'table-wrap'}, el('table', {id: 'nodes', 'aria-labelledby': 'nodes-title'},
      el('thead', {}, el('tr', {}, ['Name', 'Address', 'Role', 'State', 'Availability', 'Engine', 'Replicas', 'Metrics agent'].map((h) => el('th', {scope: 'col'}, h)))),
      nodesBody)));
  const nodeState = (n) => el('span', {class: `badge ${n.state === 'ready' ? 'status-succeeded' : 'status-failed'}`}, n.state);

  async function loadNodes() {
    clearError(nodesError);
    try {
      const v = await api('GET', '/api/admin/nodes');
      if (!alive()) return;
      nodesMode.textContent = v.engine === 'swarm'
        ? `Docker Swarm, replicas published ${v.publishMode === 'ingress' ? 'through the routing mesh' : 'on the node each runs on'}`
        : 'One Docker engine';
      nodesBody.replaceChildren(...(v.nodes || []).map((n) => el('tr', {dataset: {node: n.hostname, state: n.state}},
        el('th', {scope: 'row'}, n.hostname || short(n.id)),
        el('td', {}, n.address || el('span', {class: 'muted'}, '—')),
        el('td', {}, n.leader ? `${n.role} (leader)` : n.role),
        el('td', {}, nodeState(n)),
        el('td', {}, n.availability),
        el('td', {}, n.engineVersion || '—'),
        el('td', {class: 'col-replicas'}, String(n.replicasRunning)),
        // On Swarm a node's replicas have metrics only while its agent runs there.
        el('td', {class: 'col-agent'}, n.agentRunning == null ? el('span', {class: 'muted'}, 'not needed') : n.agentRunning ? 'running' : el('span', {class: 'badge status-failed'}, 'missing')))));
    } catch (err) {
      if (alive()) showError(nodesError, err);
    }
  }
  const yesNo = (ok, text) => el('span', {class: `badge ${ok ? 'status-succeeded' : 'status-failed'}`}, text);

  async function load() {
    clearError(error);
    refresh.disabled = true;
    try {
      const s = await api('GET', '/api/admin/system');
      if (!alive()) return;
      const disk = s.dataDir || {};
      const free = disk.freeBytes != null && disk.totalBytes
        ? `${bytes(disk.freeBytes)} free of ${bytes(disk.totalBytes)} (${Math.round((disk.freeBytes / disk.totalBytes) * 100)}%)` : 'unknown';
      const items = [
        ['Version', s.version],
        ['Store', s.store],
        ['Docker engine', s.engine?.reachable
          ? [yesNo(true, 'reachable'), s.engine.version ? ` version ${s.engine.version}` : '']
          : [yesNo(false, 'unreachable'), s.engine?.error ? ` ${s.engine.error}` : '']],
        ['Controller leader', s.leader
          ? [el('code', {}, s.leader.holder), s.leader.isThisProcess ? ' (this process)' : '', s.leader.expiresAt ? ` · lease until ${when(s.leader.expiresAt)}` : '']
          : [yesNo(false, 'none'), ' no controller holds the lease']],
        ['Reconcile backlog', `${s.queueDepth} application${s.queueDepth === 1 ? '' : 's'} waiting`],
        s.applications != null ? ['Applications', String(s.applications)] : null,
        s.users != null ? ['Users', String(s.users)] : null,
        ['Builds', `${s.builds?.running ?? 0} running, ${s.builds?.queued ?? 0} queued`],
        ['Data directory', [el('code', {}, disk.path || '—'), ` · ${free}`]],
      ].filter(Boolean);
      fill(list, items.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    } catch (err) {
      if (alive()) showError(error, err);
    } finally {
      refresh.disabled = false;
    }
  }
  refresh.addEventListener('click', () => loadNodes());
  await Promise.all([load(), loadNodes()]);
  return {};
}

const VIEWS = {users, audit, system};

async function switchTab(tab) {
  const mine = ++seq;
  const panel = $('#panel');
  panel.replaceChildren();
  panel.setAttribute('aria-busy', 'true');
  document.title = `Admin · ${TITLES[tab] || tab} · Longin`;
  try {
    await (VIEWS[tab] || users)(panel, () => mine === seq);
  } catch (err) {
    if (mine === seq) showError(panel, err);
  }
  if (mine === seq) panel.setAttribute('aria-busy', 'false');
}

export async function start() {
  const panel = $('#panel');
  if (!isAdmin()) {
    panel.setAttribute('aria-busy', 'false');
    document.querySelector('nav.tabs').hidden = true;
    fill(panel, el('p', {id: 'admins-only', class: 'notice'}, 'Admins only. ', el('a', {href: '/'}, 'Back to your applications')));
    return;
  }
  tabs(document.querySelector('nav.tabs'), document.body.dataset.tab || 'users', switchTab);
}
