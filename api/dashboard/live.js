// Live streams over WebSocket, kept alive: every (re)connection authenticates with a
// fresh token and resubscribes; a lost one retries with capped, jittered exponential
// backoff. Only timers and socket events drive it, never animation frames, so a
// background tab stays current.

import {accessToken} from './api.js';

const FIRST = 500, MAX = 15_000;
// The server answers auth at once: this long without `ready` is a dead attempt.
const READY_WAIT = 10_000;
// Browsers answer the server's ping frames by themselves; our JSON ping tells us of
// a connection that died without a close.
const PING = 30_000, SILENCE = 75_000;

const lost = new Set();
const all = new Set();

function banner() {
  const b = document.getElementById('banner');
  if (!b) return;
  if (lost.size) {
    Object.assign(b, {textContent: 'Live updates lost — reconnecting…', hidden: false});
    b.classList.add('banner-warn');
  } else if (b.classList.contains('banner-warn')) {
    b.classList.remove('banner-warn');
    Object.assign(b, {textContent: '', hidden: true});
  }
}

// A handler's bug must not kill the stream; it still surfaces, outside it.
const guard = (fn, arg) => { try { fn(arg); } catch (e) { setTimeout(() => { throw e; }); } };

/**
 * Opens `path` (`/ws/logs`, `/ws/metrics`, `/ws/admin`) and keeps it open.
 * `subscribe`: a message, a list of them, a function returning either (called on
 * each connection, so it names what is wanted then), or null. `onMessage(msg)` gets
 * every server message but pong, `error`s included; `onState` gets 'connecting' |
 * 'open' | 'reconnecting' | 'closed'. Returns {close(), send(msg)}; send answers
 * false while not connected (what must outlive a reconnection goes in `subscribe`).
 */
export function stream(path, subscribe, {onMessage = () => {}, onState = () => {}} = {}) {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
  let ws = null, ready = false, closed = false, attempt = 0, refused = false, heard = 0;
  let retryT, readyT, pingT;
  const self = {};

  const state = (s) => {
    s === 'reconnecting' ? lost.add(self) : lost.delete(self);
    banner();
    guard(onState, s);
  };
  const stop = () => { clearTimeout(readyT); clearInterval(pingT); clearTimeout(retryT); };
  const end = () => {
    closed = true;
    stop();
    all.delete(self);
    const s = ws;
    ws = null;
    try { s?.close(); } catch { /* closed already */ }
    state('closed');
  };
  const retry = () => {
    stop();
    ready = false;
    if (closed) return;
    state('reconnecting');
    const base = Math.min(MAX, FIRST * 2 ** attempt++);
    // Jitter spreads many tabs' reconnections after a server restart.
    retryT = setTimeout(connect, base / 2 + Math.random() * base / 2);
  };

  async function connect() {
    let token;
    try {
      token = await accessToken({fresh: refused});
    } catch {
      return retry(); // unreachable server, or a session gone (the page is leaving)
    }
    refused = false;
    if (closed) return;
    const s = new WebSocket(url);
    ws = s;
    readyT = setTimeout(() => s.close(), READY_WAIT);
    s.onopen = () => s.send(JSON.stringify({type: 'auth', token}));
    s.onmessage = (ev) => {
      heard = Date.now();
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === 'pong') return;
      if (!ready && m.type === 'ready') {
        ready = true;
        attempt = 0;
        clearTimeout(readyT);
        const subs = typeof subscribe === 'function' ? subscribe() : subscribe;
        for (const x of subs == null ? [] : [].concat(subs)) s.send(JSON.stringify(x));
        pingT = setInterval(() => (Date.now() - heard > SILENCE ? s.close() : s.send('{"type":"ping"}')), PING);
        return state('open');
      }
      if (!ready && m.type === 'error') {
        // Not allowed at all: retrying cannot help. A refused token is renewed for
        // the next attempt.
        if (m.code === 'forbidden') { guard(onMessage, m); return end(); }
        refused = m.code === 'unauthorized';
      }
      guard(onMessage, m);
    };
    s.onclose = () => {
      if (ws !== s) return;
      ws = null;
      retry();
    };
  }

  self.close = () => { if (!closed) end(); };
  self.send = (m) => !!(ws && ready && ws.readyState === 1 && (ws.send(JSON.stringify(m)), true));
  all.add(self);
  state('connecting');
  connect();
  return self;
}

// A page being left must neither reconnect nor flash the banner while it unloads.
addEventListener('pagehide', () => { for (const s of [...all]) s.close(); });
