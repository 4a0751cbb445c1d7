// The session and every API request.
//
// The access token lives in this module's memory only: no storage a script could
// read, gone with the page. Each page load trades the HttpOnly refresh cookie for a
// new one. A refresh token works once and a replay revokes the whole session, so
// refreshes are serialised: one in flight per page, one at a time across tabs (Web
// Locks), each presenting the cookie the one before left.

const HINT = 'longin.session';
// Renew this long before expiry; background tabs run timers up to a minute late.
const EARLY = 90_000;
const MIN_LEFT = 20_000;

let token = null, expires = 0, user = null, inflight = null, timer = null;

export class ApiError extends Error {
  constructor(status, body, fallback) {
    const e = body?.error || {};
    super(e.message || fallback || `request failed (${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.code = e.code || (status ? `http_${status}` : 'network');
    this.fields = e.fields || null; // {path: message}, as the API gives it
    this.line = e.line ?? null;
    this.column = e.column ?? null;
    this.quota = e.quota || null;
  }
}

/** The session is gone for good; the page is on its way to /login. */
class SessionLost extends Error {}

function hint(on) {
  try {
    if (on === undefined) return localStorage.getItem(HINT) === '1';
    on ? localStorage.setItem(HINT, '1') : localStorage.removeItem(HINT);
  } catch { /* storage disabled: every visit then starts at /login */ }
  return false;
}

function setSession(t) {
  token = t.access_token;
  try {
    expires = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp * 1000;
  } catch { expires = 0; }
  if (!Number.isFinite(expires) || !expires) expires = Date.now() + (t.expires_in || 60) * 1000;
  if (t.user) user = t.user;
  hint(true);
  clearTimeout(timer);
  timer = setTimeout(() => refresh().catch(() => {}), Math.max(5_000, expires - Date.now() - EARLY));
}

function drop() {
  token = user = null;
  expires = 0;
  clearTimeout(timer);
  hint(false);
}

/** Sends a signed-out visitor to /login, to come back here after. */
export function toLogin() {
  if (location.pathname !== '/login') location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

async function postRefresh() {
  const r = await fetch('/api/auth/refresh', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}', cache: 'no-store'})
    .catch(() => { throw new ApiError(0, null, 'cannot reach the server'); });
  if (r.ok) return setSession(await r.json());
  if (r.status === 401 || r.status === 403) {
    drop();
    throw new SessionLost();
  }
  throw new ApiError(r.status, await r.json().catch(() => null));
}

/** Trades the refresh cookie for a new access token, one trade at a time. */
function refresh() {
  if (!inflight) {
    inflight = (navigator.locks ? navigator.locks.request('longin-refresh', postRefresh) : postRefresh())
      .finally(() => { inflight = null; });
    inflight.catch((e) => e instanceof SessionLost && toLogin());
  }
  return inflight;
}

/**
 * Restores the session at page load: the user, or null (and the page is on its way
 * to /login unless it is /login). Without the hint there is nothing to restore, and
 * asking would only earn a 401.
 */
export async function boot() {
  if (!hint()) return toLogin(), null;
  try {
    await refresh();
    return user;
  } catch (e) {
    if (e instanceof SessionLost) return null;
    throw e;
  }
}

/** A valid access token, renewed first when it is about to expire (or `fresh`). */
export async function accessToken({fresh = false} = {}) {
  if (fresh || !token || expires - Date.now() < MIN_LEFT) {
    if (!token && !hint()) {
      toLogin();
      throw new SessionLost();
    }
    await refresh();
  }
  return token;
}

/** The signed-in user (id, username, email, role, …). */
export const me = () => user;
export const isAdmin = () => user?.role === 'admin';

/**
 * Calls the API: `api('PUT', path, body, {contentType, accept})`. An object body is
 * sent as JSON, a string as is. Answers parsed JSON, the text of other answers, or
 * null for 204. A 401 renews the token once and repeats the request; when the session
 * cannot be renewed the page goes to /login and the promise never settles (there is
 * nothing left to show). Anything else that is not 2xx throws an ApiError.
 */
export async function api(method, path, body, opts = {}) {
  const str = typeof body === 'string';
  const headers = {Accept: opts.accept || 'application/json'};
  if (body != null) headers['Content-Type'] = opts.contentType || (str ? 'text/plain' : 'application/json');
  const payload = body == null ? undefined : str ? body : JSON.stringify(body);
  // A change of the machine's networks (a new interface, Wi-Fi to cable) fails the
  // requests in flight (net::ERR_NETWORK_CHANGED): one that may be sent twice is sent
  // once more. A sign-in may (a second session is harmless); a token refresh may not
  // (its token is used up by the first).
  const again = ['GET', 'HEAD', 'PUT', 'DELETE'].includes(method) || path === '/api/auth/login';
  const send = async (bearer) => {
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fetch(path, {method, headers, body: payload, cache: 'no-store', signal: opts.signal});
      } catch (e) {
        if (e?.name === 'AbortError') throw e;
        if (!again || attempt > 0) throw new ApiError(0, null, 'cannot reach the server; check your connection');
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  };
  let r;
  try {
    r = await send(opts.anonymous ? null : await accessToken());
    if (r.status === 401 && !opts.anonymous) {
      await refresh();
      r = await send(token);
      if (r.status === 401) throw (drop(), toLogin(), new SessionLost());
    }
  } catch (e) {
    if (e instanceof SessionLost) return new Promise(() => {});
    throw e;
  }
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
  if (r.status === 204) return null;
  return (r.headers.get('content-type') || '').includes('json') ? r.json() : r.text();
}

/** Signs in (the server sets the refresh cookie too). */
export async function signIn(username, password) {
  setSession(await api('POST', '/api/auth/login', {username, password}, {anonymous: true}));
  return user;
}

/** Registers an account, which signs it in. */
export async function register(username, email, password) {
  setSession(await api('POST', '/api/auth/register', {username, email, password}, {anonymous: true}));
  return user;
}

/** Revokes the session the cookie names, and goes to /login. */
export async function signOut() {
  await fetch('/api/auth/logout', {method: 'POST', cache: 'no-store'}).catch(() => {});
  drop();
  location.assign('/login');
}
