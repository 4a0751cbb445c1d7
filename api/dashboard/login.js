// The sign-in page: sign in, or register when the server takes registrations.

import {api, ApiError, register, signIn} from './api.js';
import {$, clearError, showError} from './util.js';

/** `?next=` if it is a path of this site (never `//host` nor a full URL). */
function next() {
  const target = new URLSearchParams(location.search).get('next') || '';
  if (!target.startsWith('/') || target.startsWith('//') || target.startsWith('/\\')) return '/';
  try {
    const url = new URL(target, location.origin);
    if (url.origin !== location.origin || url.pathname === '/login') return '/';
    return url.pathname + url.search + url.hash;
  } catch {
    return '/';
  }
}

async function registrationState() {
  try {
    return await api('GET', '/api/auth/registration', null, {anonymous: true});
  } catch (err) {
    // A server without the endpoint takes no registrations from strangers.
    if (err instanceof ApiError) return {open: false, firstAccount: false};
    throw err;
  }
}

function submitting(form, busy) {
  for (const b of form.querySelectorAll('button, input')) b.disabled = busy;
  form.setAttribute('aria-busy', String(busy));
}

export async function start(user) {
  if (user) {
    // Already signed in (the cookie still holds a session).
    location.replace(next());
    return;
  }
  const signInForm = $('#sign-in-form');
  const registerForm = $('#register-form');
  const toggle = $('#toggle-register');
  const title = $('#sign-in-title');
  const error = $('#sign-in-error');
  $('#username').focus();

  const showRegister = (on) => {
    registerForm.hidden = !on;
    signInForm.hidden = on;
    title.textContent = on ? 'Create an account' : 'Sign in';
    toggle.textContent = on ? 'I have an account: sign in' : 'Create an account';
    document.title = `${title.textContent} · Longin`;
    clearError(error);
    (on ? $('#reg-username') : $('#username')).focus();
  };
  toggle.addEventListener('click', () => showRegister(registerForm.hidden));

  signInForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearError(error);
    submitting(signInForm, true);
    try {
      await signIn($('#username').value.trim(), $('#password').value);
      location.assign(next());
    } catch (err) {
      submitting(signInForm, false);
      showError(error, err);
      $('#password').select();
    }
  });

  registerForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearError(error);
    submitting(registerForm, true);
    try {
      // Registering signs the new account in.
      await register($('#reg-username').value.trim(), $('#reg-email').value.trim(), $('#reg-password').value);
      location.assign(next());
    } catch (err) {
      submitting(registerForm, false);
      showError(error, err);
    }
  });

  const state = await registrationState();
  if (state.open) toggle.hidden = false;
  if (state.firstAccount) {
    $('#first-admin').hidden = false;
    showRegister(true);
  }
}
