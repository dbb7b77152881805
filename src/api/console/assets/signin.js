// Sign-in: the API token is checked with one `/v1` call and kept in sessionStorage only.

import { api, token, ApiError } from './api.js';
import { h, replace, field } from './dom.js';

export function render(view, _params, go) {
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    required: true,
    spellcheck: 'false',
  });
  const status = h('p', { id: 'signin-status', class: 'status', role: 'status' });
  const form = h(
    'form',
    { id: 'signin', class: 'card narrow', novalidate: true },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an API token of this daemon (from api.tokens_env, or the development token).'),
    field('API token', input, 'Kept in this tab only (sessionStorage); sent as the bearer token to /v1.'),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    status,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (!value) {
      status.textContent = 'Enter a token.';
      return;
    }
    status.textContent = 'Checking…';
    token.set(value);
    try {
      await api('GET', '/campaigns?limit=1', undefined, { signOutOn401: false });
      go('#/campaigns');
    } catch (err) {
      token.clear();
      status.textContent =
        err instanceof ApiError && err.status === 401
          ? 'This token was refused (401 unauthorized): check it against the daemon configuration.'
          : `Could not sign in: ${err.message}`;
    }
  });
  replace(view, form);
  input.focus();
}
