// One application's page: its tabs, kept current by the application's status stream.
// Tabs switch in place; each tab's URL is also a page of the server.

import {api, isAdmin, me} from './api.js';
import {stream} from './live.js';
import {$, ago, age, bytes, clearError, confirmAction, debounce, el, field, fill, ownerParam, percent,
  phaseBadge, setPhase, short, showError, statusBadge, tabs, when, withOwner} from './util.js';

const TITLES = {overview: 'Overview', metrics: 'Metrics', logs: 'Logs', deployments: 'Deployments', settings: 'Settings'};
let name, owner, record, topic, live, view = null, seq = 0;

const path = (p = '') => withOwner(`/api/applications/${encodeURIComponent(name)}${p}`, owner);
const st = () => record.status || {};
const phase = () => setPhase($('#app-phase'), st().phase);
const button = (attrs, text) => el('button', {type: 'button', ...attrs}, text);
const notice = (id) => el('div', {id, class: 'notice error', role: 'alert', hidden: true});
const table = (id, heads, body) => el('div', {class: 'table-wrap'}, el('table', {id},
  el('thead', {}, el('tr', {}, heads.map((h) => el('th', {scope: 'col'}, h)))), body));
const empty = (n, text) => el('tr', {}, el('td', {colspan: n, class: 'muted'}, text));
const portLink = (p) => el('a', {class: 'port', href: `http://${location.hostname}:${p}/`, target: '_blank', rel: 'noopener'}, String(p));

/**
 * Applies a change of the spec to the application as it is now. Status writes bump
 * the resourceVersion all the time, so the application is read again first; but a
 * spec changed elsewhere since `base` was read (a new generation) is not overwritten.
 */
async function applyChange(change, base) {
  const fresh = await api('GET', path());
  if (base && fresh.metadata.generation !== base.metadata.generation) {
    record = fresh;
    throw Object.assign(new Error(`The application changed since this page read it (generation ${base.metadata.generation} → ${fresh.metadata.generation}). The form now shows the new version: check it and save again.`), {stale: true});
  }
  const {name: n, labels, annotations, resourceVersion} = fresh.metadata;
  const doc = {apiVersion: fresh.apiVersion, kind: fresh.kind, metadata: {name: n, labels, annotations, resourceVersion}, spec: change(structuredClone(fresh.spec))};
  const r = (await api('PUT', withOwner('/api/applications/apply', owner), doc)).results[0];
  record = r.application;
  return r;
}

const reload = debounce(async () => {
  try {
    record = await api('GET', path());
    phase();
    view?.onRecord?.();
  } catch (e) {
    if (e.status === 404) gone();
  }
}, 300);

function gone() {
  live?.close();
  Object.assign($('#banner'), {textContent: 'This application no longer exists.', hidden: false});
}

function onMessage(m) {
  if (m.type === 'status') {
    const {type, appId, app, ...fields} = m;
    record.status = {...record.status, ...fields};
    phase();
    view?.onStatus?.();
    // A generation newer than the page's is a spec changed elsewhere.
    if ((fields.observedGeneration || 0) > (record.metadata.generation || 0)) reload();
  } else if (m.type === 'metrics') view?.onMetrics?.(m.aggregated);
  else if (m.type === 'error' && m.code === 'not_found') gone();
}

// Overview.

const usageText = (u) => (u ? `${percent(u.totalCpu)} CPU, ${bytes(u.totalMemory)} memory, ${u.containerCount} containers` : '—');

function summary(usage) {
  const s = record.spec, t = st(), m = record.metadata, h = s.healthCheck;
  const tag = s.image?.slice(s.image.lastIndexOf(':') + 1);
  return [
    ['Phase', [phaseBadge(t.phase), t.message && el('span', {class: 'phase-message'}, ` ${t.message}`)]],
    ['Replicas', `${t.readyReplicas ?? 0} ready of ${s.replicas} desired (${t.updatedReplicas ?? 0} up to date)`],
    ['Ports', t.hostPorts?.length ? t.hostPorts.map(portLink) : '—'],
    ['Image', el('code', {}, s.image || (s.source ? 'not built yet' : '—'))],
    s.source && ['Source', [el('code', {}, s.source.git.url), ` (branch ${s.source.git.branch || 'main'})`]],
    // A built image is tagged with its commit.
    s.source && /^[0-9a-f]{12}$/.test(tag) && ['Commit', el('code', {}, tag)],
    ['Resources', `${s.resources?.memory ?? '512Mi'} memory, ${s.resources?.cpu ?? '1'} CPU per replica`],
    ['Usage now', usageText(usage)],
    ['Health check', h ? `${h.http ? `HTTP GET ${h.http.path}` : 'TCP connect'}, every ${h.periodSeconds ?? 10} s, restart after ${h.failureThreshold ?? 3} failures` : 'none'],
    ['Restart policy', s.restartPolicy || 'Always'],
    ['Generation', `${m.generation} (observed ${t.observedGeneration ?? 0})`],
    isAdmin() && ['Owner', m.owner],
    ['Created', `${when(m.creationTimestamp)} (${age(m.creationTimestamp)} ago)`],
    Object.keys(m.labels || {}).length && ['Labels', Object.entries(m.labels).map(([k, v]) => el('code', {class: 'label'}, `${k}=${v}`))],
  ].filter(Boolean).map(([k, v]) => [el('dt', {}, k), el('dd', {dataset: {key: k.toLowerCase().replace(/ /g, '-')}}, v)]);
}

async function overview(panel, alive) {
  let usage = null;
  const error = notice('action-error');
  const done = el('p', {id: 'action-result', role: 'status', class: 'muted'});
  const dl = el('dl', {id: 'app-summary', class: 'summary'});
  const conditions = el('tbody', {id: 'conditions-body'});
  const replicas = el('tbody', {id: 'replicas-body'});
  const scale = el('input', {id: 'scale-replicas', type: 'number', min: 0, max: 20, required: true});
  const act = (question, opts, call) => async () => {
    if (!(await confirmAction(question, opts))) return;
    clearError(error);
    done.textContent = '';
    for (const b of actions.querySelectorAll('button')) b.disabled = true;
    try {
      done.textContent = await call();
      phase();
    } catch (e) {
      showError(error, e);
    }
    if (alive()) render();
  };
  const verb = (v, text) => async () => { record = await api('POST', path(`/${v}`)); return text; };
  const stop = button({id: 'action-stop', onclick: act(`Stop ${name}?`, {ok: 'Stop', detail: 'Its replicas are stopped; Start brings back as many.'}, verb('stop', 'Stopping.'))}, 'Stop');
  const start = button({id: 'action-start', onclick: act(`Start ${name}?`, {ok: 'Start'}, verb('start', 'Starting.'))}, 'Start');
  const restart = button({id: 'action-restart', onclick: act(`Restart ${name}?`, {ok: 'Restart', detail: 'Every replica is replaced, a batch at a time.'}, verb('restart', 'Restarting.'))}, 'Restart');
  const scaleB = button({id: 'action-scale', onclick: () => {
    const n = Number(scale.value);
    if (scale.reportValidity()) {
      act(`Scale ${name} to ${n} replica${n === 1 ? '' : 's'}?`, {ok: 'Scale'}, async () =>
        ((await applyChange((s) => ({...s, replicas: n}))).unchanged ? 'Unchanged.' : `Scaling to ${n}.`))();
    }
  }}, 'Scale');
  const del = button({id: 'action-delete', class: 'danger', onclick: act(`Delete ${name}?`,
    {ok: 'Delete', danger: true, detail: 'Its containers are removed and its ports released. This cannot be undone.'},
    async () => { await api('DELETE', path()); location.assign('/'); return 'Deleting.'; })}, 'Delete');
  const actions = el('div', {id: 'app-actions', class: 'actions'}, stop, start, restart,
    el('span', {class: 'scale'}, el('label', {for: 'scale-replicas'}, 'Replicas'), scale, scaleB), del);

  panel.append(actions, error, done, el('h2', {}, 'Status'), dl,
    el('h2', {}, 'Replicas'), table('replicas', ['Replica', 'Container', 'Port', 'Status', 'Restarts', 'Started'], replicas),
    el('h2', {}, 'Conditions'), table('conditions', ['Type', 'Status', 'Reason', 'Message', 'Changed'], conditions));

  function render() {
    fill(dl, summary(usage));
    const c = st().conditions || [];
    fill(conditions, c.length ? c.map((x) => el('tr', {dataset: {condition: x.type}}, [x.type, statusBadge(x.status), x.reason, x.message, ago(x.lastTransitionTime)].map((v) => el('td', {}, v))))
      : empty(5, 'No conditions reported yet.'));
    const stopped = record.spec.replicas === 0, ending = st().phase === 'Terminating';
    stop.disabled = restart.disabled = stopped || ending;
    start.disabled = !stopped || ending;
    scaleB.disabled = del.disabled = ending;
    if (document.activeElement !== scale) scale.value = record.spec.replicas;
  }

  async function containers() {
    try {
      const list = await api('GET', path('/containers'));
      if (alive()) {
        fill(replicas, list.length ? list.map((c) => el('tr', {dataset: {container: c.id}},
          [`r${c.replica}`, el('code', {title: c.dockerId || c.id}, short(c.dockerId || c.id)), c.hostPort ? portLink(c.hostPort) : '—',
            statusBadge(c.status), String(c.restartCount), ago(c.startedAt)].map((v) => el('td', {}, v)))) : empty(6, 'No containers.'));
      }
    } catch (e) {
      if (alive()) showError(error, e);
    }
  }
  const later = debounce(containers, 250);

  render();
  await containers();
  const ages = setInterval(render, 30_000);
  return {
    unmount: () => clearInterval(ages),
    // The container rows are written a moment after the status that announces them.
    onStatus: () => { render(); later(); setTimeout(later, 2000); },
    onRecord: render,
    onMetrics: (u) => {
      usage = u;
      const dd = dl.querySelector('[data-key="usage-now"]');
      if (dd) dd.textContent = usageText(u);
    },
  };
}

// Deployments.

const ACTIVE = ['queued', 'building'];

async function deployments(panel, alive) {
  const error = notice('deploy-error');
  const done = el('p', {id: 'deploy-result', role: 'status', class: 'muted'});
  const body = el('tbody', {id: 'deployments-body'});
  const title = el('h2', {id: 'build-log-title'});
  const box = el('div', {id: 'build-log-view'});
  const section = el('section', {id: 'build-log', hidden: true, 'aria-labelledby': 'build-log-title'}, title, box);
  let list = [], logStream = null, logView = null, shown = null;

  // `queues`: the call answers the revision it queued, whose build is then shown.
  const act = (question, opts, call, queues = true) => async () => {
    if (!(await confirmAction(question, opts))) return;
    clearError(error);
    done.textContent = '';
    try {
      const q = await call();
      await load();
      if (queues && q?.revision) {
        done.textContent = `Revision ${q.revision} queued.`;
        showLog(q.revision);
      }
    } catch (e) {
      showError(error, e);
    }
  };

  panel.append(el('div', {class: 'actions'}, button({id: 'action-redeploy', onclick: act(`Redeploy ${name}?`,
    {ok: 'Redeploy', detail: record.spec.source ? 'The branch’s current head is built and rolled out.' : 'The image is pulled again and every replica replaced.'},
    () => api('POST', path('/redeploy')))}, 'Redeploy')), error, done,
  table('deployments', ['Revision', 'Trigger', 'Status', 'Image', 'Commit', 'Created', 'Started', 'Finished', 'Actions'], body), section);

  function render() {
    fill(body, list.length ? list.map((d) => {
      const r = d.revision, active = ACTIVE.includes(d.status);
      return el('tr', {dataset: {revision: r, status: d.status}, class: shown === r && 'selected'},
        el('th', {scope: 'row'}, String(r)), el('td', {}, d.triggeredBy),
        el('td', {}, statusBadge(d.status), d.message && el('div', {class: 'deploy-message'}, d.message)),
        el('td', {}, d.image ? el('code', {class: 'image', title: d.image}, d.image) : '—'),
        el('td', {}, d.commitSha ? [el('code', {title: d.commitSha}, d.commitSha.slice(0, 7)),
          d.commitMessage && el('div', {class: 'commit-message'}, d.commitMessage), d.commitAuthor && el('div', {class: 'muted'}, d.commitAuthor)] : '—'),
        [d.createdAt, d.startedAt, d.finishedAt].map((t) => el('td', {}, ago(t))),
        el('td', {class: 'row-actions'},
          button({class: 'secondary small action-log', 'aria-pressed': String(shown === r), onclick: () => showLog(r)}, 'Log'),
          active && button({class: 'secondary small action-cancel', onclick: act(`Cancel revision ${r}?`, {ok: 'Cancel revision', danger: true, detail: 'The running image stays.'},
            () => api('POST', path(`/deployments/${r}/cancel`)), false)}, 'Cancel'),
          !active && d.status !== 'deploying' && (d.image || d.commitSha) && button({class: 'secondary small action-rollback', onclick: act(`Roll back ${name} to revision ${r}?`,
            {ok: 'Roll back', detail: `A new revision rolls out revision ${r}’s image${d.image ? ` (${d.image})` : ''}.`},
            () => api('POST', path('/rollback'), {revision: r}))}, 'Roll back')));
    }) : empty(9, 'No revisions yet.'));
  }

  async function load() {
    try {
      list = await api('GET', path('/deployments'));
      if (alive()) render();
    } catch (e) {
      if (alive()) showError(error, e);
    }
  }
  const refresh = debounce(load, 400);

  async function showLog(r) {
    logStream?.close();
    logStream = null;
    shown = r;
    render();
    const {LogView} = await import('./logview.js');
    if (!alive() || shown !== r) return;
    section.hidden = false;
    title.textContent = `Build log — revision ${r}`;
    logView?.destroy?.();
    box.replaceChildren();
    const v = logView = new LogView(box, {maxLines: 5000});
    const line = (text) => v.append({text, stream: 'build', ts: null});
    const d = list.find((x) => x.revision === r);
    if (!d || ACTIVE.includes(d.status)) {
      let opens = 0;
      logStream = stream('/ws/logs', {type: 'subscribe', app: topic, revision: r}, {
        // A resubscription replays the stored log from its start.
        onState: (s) => s === 'open' && opens++ && v.clear(),
        onMessage: (m) => {
          if (m.revision !== undefined && m.revision !== r) return;
          if (m.type === 'buildLog') line(m.line);
          else if (m.type === 'buildEnd') {
            v.note(`Build ended: ${m.status}${m.message ? ` — ${m.message}` : ''}`);
            logStream?.close();
            refresh();
          } else if (m.type === 'lagged') v.note(`${m.dropped} lines dropped here`);
          else if (m.type === 'error') v.note(m.message);
        },
      });
      return;
    }
    try {
      const lines = (await api('GET', path(`/deployments/${r}/log`), null, {accept: 'text/plain'})).split('\n');
      if (lines.at(-1) === '') lines.pop();
      if (shown === r) lines.length ? lines.forEach(line) : v.note('No build log: this revision built nothing.');
    } catch (e) {
      v.note(e.message);
    }
  }

  await load();
  const active = list.find((d) => ACTIVE.includes(d.status));
  if (active) showLog(active.revision);
  return {unmount: () => { logStream?.close(); logView?.destroy?.(); }, onStatus: refresh};
}

// Settings.

function settings(panel) {
  const errors = notice('settings-errors');
  const result = el('p', {id: 'settings-result', role: 'status', class: 'muted'});
  const form = el('form', {id: 'settings-form', class: 'settings', novalidate: true});
  const envBody = el('tbody', {id: 'env-body'});
  let base = record, rows = [], n = 0;
  const input = (id, f, attrs) => el('input', {id, dataset: {field: f}, autocomplete: 'off', ...attrs});
  const num = (id, f, attrs) => input(id, `spec.healthCheck.${f}`, {type: 'number', min: 1, ...attrs});
  const I = {
    replicas: input('set-replicas', 'spec.replicas', {type: 'number', min: 0, max: 20}),
    memory: input('set-memory', 'spec.resources.memory', {placeholder: '512Mi'}),
    cpu: input('set-cpu', 'spec.resources.cpu', {placeholder: '1'}),
    probe: el('select', {id: 'set-probe', dataset: {field: 'spec.healthCheck'}},
      [['', 'None'], ['http', 'HTTP GET'], ['tcp', 'TCP connect']].map(([v, t]) => el('option', {value: v}, t))),
    path: input('set-probe-path', 'spec.healthCheck.http.path', {placeholder: '/healthz'}),
    period: num('set-probe-period', 'periodSeconds', {placeholder: '10'}),
    threshold: num('set-probe-threshold', 'failureThreshold', {max: 100, placeholder: '3'}),
  };
  const pathField = field('HTTP path', I.path);
  I.probe.onchange = () => { pathField.hidden = I.probe.value !== 'http'; };

  function envRow(v = {name: '', secret: false}, stored = false) {
    const i = n++;
    // A stored secret comes without its value; sent without one, it is kept.
    const keep = stored && v.secret && v.value == null;
    const name = el('input', {id: `env-name-${i}`, class: 'env-name', value: v.name, autocomplete: 'off', spellcheck: 'false'});
    // new-password: the browser must not fill a saved password into a secret.
    const value = el('input', {id: `env-value-${i}`, class: 'env-value', type: v.secret ? 'password' : 'text', autocomplete: 'new-password',
      value: v.value ?? '', placeholder: keep ? 'stored secret: type to replace' : ''});
    const secret = el('input', {id: `env-secret-${i}`, class: 'env-secret', type: 'checkbox', checked: v.secret});
    secret.onchange = () => { value.type = secret.checked ? 'password' : 'text'; };
    const err = el('span', {class: 'field-error', hidden: true, id: `env-error-${i}`});
    const row = {name, value, secret, err, keep};
    row.tr = el('tr', {class: 'env-row'},
      el('td', {}, el('label', {for: name.id, class: 'visually-hidden'}, 'Name'), name),
      el('td', {}, el('label', {for: value.id, class: 'visually-hidden'}, 'Value'), value),
      el('td', {}, el('label', {for: secret.id, class: 'check'}, secret, ' secret')),
      el('td', {}, button({class: 'secondary small env-remove', 'aria-label': `Remove ${v.name || 'variable'}`, onclick: () => {
        rows = rows.filter((r) => r !== row);
        row.tr.remove();
      }}, 'Remove'), err));
    rows.push(row);
    envBody.append(row.tr);
    return row;
  }

  function fillForm() {
    base = record;
    const s = record.spec, h = s.healthCheck || {};
    const set = {replicas: s.replicas, memory: s.resources?.memory, cpu: s.resources?.cpu, probe: s.healthCheck ? (h.http ? 'http' : 'tcp') : '',
      path: h.http?.path, period: h.periodSeconds, threshold: h.failureThreshold};
    for (const [k, v] of Object.entries(set)) I[k].value = v ?? '';
    pathField.hidden = I.probe.value !== 'http';
    rows = [];
    envBody.replaceChildren();
    for (const v of s.env || []) envRow(v, true);
  }

  const val = (i) => (i.value.trim() === '' ? undefined : Number(i.value));
  const named = (x) => rows.find((r) => r.name.value.trim() === x);

  function change(s, sent) {
    s.replicas = val(I.replicas) ?? s.replicas;
    s.resources = {memory: I.memory.value.trim() || undefined, cpu: I.cpu.value.trim() || undefined};
    const kind = I.probe.value;
    if (!kind) delete s.healthCheck;
    else {
      // The delay and timeout this form does not show stay as they were.
      const {http, tcp, ...rest} = s.healthCheck || {};
      s.healthCheck = {...rest, ...(kind === 'http' ? {http: {path: I.path.value.trim()}} : {tcp: {}}), periodSeconds: val(I.period), failureThreshold: val(I.threshold)};
    }
    s.env = [];
    for (const r of rows) {
      const v = {name: r.name.value.trim()};
      if (!v.name && !r.value.value) continue;
      if (r.secret.checked) v.secret = true;
      if (!(r.keep && v.secret && r.value.value === '')) v.value = r.value.value;
      // As the server would say of a new secret sent without a value.
      if (v.secret && !r.keep && !v.value) throw Object.assign(new Error('A new secret needs a value.'), {fields: {[`spec.env.${v.name}.value`]: 'a new secret needs a value'}});
      s.env.push(v);
      sent.push(r);
    }
    return s;
  }

  function showFields(e, sent) {
    const rest = {};
    for (const [p, msg] of Object.entries(e.fields || {})) {
      const env = p.match(/^spec\.env\[(\d+)\](?:\.(\w+))?/) || p.match(/^spec\.env\.([^.]+)\.(\w+)$/);
      const r = env && (/^\d+$/.test(env[1]) ? sent[env[1]] : named(env[1]));
      const target = env ? r && (env[2] === 'name' ? r.name : r.value)
        : [...form.querySelectorAll('[data-field]')].filter((i) => p === i.dataset.field || p.startsWith(`${i.dataset.field}.`)).pop();
      const slot = r ? r.err : target && $(`#${target.id}-error`, form);
      if (!slot) { rest[p] = msg; continue; }
      target.setAttribute('aria-invalid', 'true');
      target.setAttribute('aria-describedby', slot.id);
      slot.textContent = slot.hidden ? msg : `${slot.textContent}; ${msg}`;
      slot.hidden = false;
    }
    const all = e.fields && !Object.keys(rest).length;
    showError(errors, {fields: rest, quota: e.quota, message: all ? 'Some fields need fixing (marked below).' : e.message});
    form.querySelector('[aria-invalid="true"]')?.focus();
  }

  form.append(
    el('fieldset', {}, el('legend', {}, 'Scale'), field('Replicas', I.replicas, '0 stops the application')),
    el('fieldset', {}, el('legend', {}, 'Resources per replica'), field('Memory', I.memory, 'e.g. 256Mi, 1Gi'), field('CPU', I.cpu, 'cores: 0.5 or 500m')),
    el('fieldset', {}, el('legend', {}, 'Health check'), field('Probe', I.probe), pathField, field('Period (s)', I.period),
      field('Failures before restart', I.threshold)),
    el('fieldset', {class: 'wide'}, el('legend', {}, 'Environment'), table('env-table', ['Name', 'Value', 'Secret', ''], envBody),
      button({id: 'env-add', class: 'secondary', onclick: () => envRow().name.focus()}, 'Add variable'),
      el('p', {class: 'muted'}, 'Secret values are never shown. A stored secret left empty keeps its value.')),
    el('div', {class: 'actions'}, el('button', {id: 'settings-save', type: 'submit'}, 'Save'),
      el('span', {class: 'muted'}, 'Other fields (image, source, command, …) stay as they are; the YAML editor changes them.')));

  form.onsubmit = async (ev) => {
    ev.preventDefault();
    clearError(errors);
    for (const s of form.querySelectorAll('.field-error')) Object.assign(s, {textContent: '', hidden: true});
    for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
    result.textContent = '';
    const save = $('#settings-save');
    save.disabled = true;
    const sent = [];
    try {
      result.textContent = (await applyChange((s) => change(s, sent), base)).unchanged ? 'Nothing changed.' : 'Saved: the new settings are rolling out.';
      fillForm();
    } catch (e) {
      if (e.stale) { fillForm(); showError(errors, e); } else showFields(e, sent);
    }
    save.disabled = false;
  };

  panel.append(errors, result, form);
  fillForm();
  return {};
}

// The page.

const VIEWS = {
  overview, deployments, settings,
  metrics: async (panel) => (await import('./metrics.js')).mountMetrics(panel, record),
  logs: async (panel) => (await import('./logs.js')).mountLogs(panel, record),
};

async function show(tab) {
  const mine = ++seq, alive = () => mine === seq;
  try { view?.unmount?.(); } catch { /* a broken view must not block the next */ }
  view = null;
  const panel = $('#panel');
  panel.replaceChildren();
  panel.setAttribute('aria-busy', 'true');
  panel.dataset.tab = tab;
  document.title = `${name} · ${TITLES[tab] || tab} · Longin`;
  let v = null;
  try {
    v = await (VIEWS[tab] || overview)(panel, alive);
  } catch (e) {
    if (alive()) showError(panel, e);
  }
  if (!alive()) return v?.unmount?.();
  view = v;
  panel.setAttribute('aria-busy', 'false');
}

export async function start() {
  name = document.body.dataset.app;
  owner = ownerParam();
  topic = `${owner || me().username}/${name}`;
  const panel = $('#panel');
  const edit = $('.heading a[href$="/edit"]');
  if (edit) edit.href = withOwner(edit.pathname, owner);
  try {
    record = await api('GET', path());
  } catch (e) {
    panel.setAttribute('aria-busy', 'false');
    if (e.status !== 404) return showError(panel, e);
    return fill(panel, el('p', {class: 'notice', id: 'app-missing'}, `No application named ${name}${owner ? ` owned by ${owner}` : ''}. `, el('a', {href: '/'}, 'All applications')));
  }
  phase();
  if (owner && owner !== me().username) $('#app-name').after(el('span', {class: 'muted'}, `owned by ${owner}`));
  live = stream('/ws/metrics', {type: 'subscribe', app: topic}, {onMessage});
  // The metrics and logs views are other modules: each loads as a page of its own.
  tabs($('nav.tabs'), document.body.dataset.tab || 'overview', show, location.search, ['metrics', 'logs']);
}
