// The entry point: restore the session, dress the frame for the user, and hand over
// to the page's own module, loaded on demand so a page fetches only what it uses.

import {boot, isAdmin, me, signOut} from './api.js';
import {el, fill} from './util.js';

const PAGES = {
  'sign-in': () => import('./login.js'),
  applications: () => import('./apps.js'),
  editor: () => import('./editor.js'),
  application: () => import('./app.js'),
  admin: () => import('./admin.js'),
};

function frame(user) {
  document.getElementById('nav').hidden = false;
  document.getElementById('nav-admin').hidden = !isAdmin();
  const who = document.getElementById('who');
  fill(who, el('span', {class: 'who-name'}, user.username),
    isAdmin() ? el('span', {class: 'badge role-admin'}, 'admin') : null);
  const out = document.getElementById('sign-out');
  out.hidden = false;
  out.addEventListener('click', () => {
    out.disabled = true;
    signOut();
  });
  const page = document.body.dataset.page;
  const current = {applications: '/', editor: location.pathname === '/apps/new' ? '/apps/new' : null, admin: '/admin'}[page];
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === current) a.setAttribute('aria-current', 'page');
  }
}

async function start() {
  const page = document.body.dataset.page;
  const load = PAGES[page];
  if (!load) return;
  // The module downloads while the session is restored.
  const module = load();
  const user = await boot();
  if (page === 'sign-in') {
    (await module).start(user);
    return;
  }
  if (!user) return; // on the way to /login
  frame(user);
  await (await module).start(me());
}

start().catch((err) => {
  const main = document.getElementById('main');
  const box = el('div', {class: 'notice error', role: 'alert'},
    el('p', {}, 'This page could not be loaded: ', err?.message || String(err)),
    el('p', {}, el('button', {type: 'button', onclick: () => location.reload()}, 'Try again')));
  main.prepend(box);
  for (const busy of document.querySelectorAll('[aria-busy="true"]')) busy.setAttribute('aria-busy', 'false');
  for (const l of document.querySelectorAll('.loading')) l.remove();
});

// A page restored from the back/forward cache has closed its sockets and may hold
// an outdated token: start over.
window.addEventListener('pageshow', (ev) => {
  if (ev.persisted) location.reload();
});
