// WeCom suppressions of one app: the members who opted out (or were suppressed through the
// API), paged; add one; lift one.

import { api, seg } from './api.js';
import { h, replace, field, table } from './dom.js';
import { when } from './format.js';

export function render(view, params, go) {
  const app = params.app || 'staff';
  const after = params.after || '';
  const appInput = h('input', { id: 'supp-app', name: 'app', type: 'text', value: app, required: true });
  const appForm = h(
    'form',
    { class: 'filters', novalidate: true },
    field('WeCom app', appInput, 'An app of the configuration with a WeCom channel.'),
    h('button', { type: 'submit' }, 'Show'),
  );
  appForm.addEventListener('submit', (e) => {
    e.preventDefault();
    go(`#/suppressions/${encodeURIComponent(appInput.value.trim())}`);
  });

  const userInput = h('input', { id: 'supp-user', name: 'user', type: 'text', required: true, autocomplete: 'off' });
  const addStatus = h('p', { class: 'status', role: 'status', id: 'supp-status' });
  const addForm = h(
    'form',
    { class: 'filters', id: 'supp-add', novalidate: true },
    field('Member id to suppress', userInput),
    h('button', { type: 'submit', class: 'primary' }, 'Suppress'),
  );
  const listSlot = h('div', { id: 'supp-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const next = h('button', { type: 'button', id: 'supp-next', disabled: true }, 'Next →');
  const first = h('button', { type: 'button', id: 'supp-first', disabled: !after }, '⇤ First page');
  first.addEventListener('click', () => go(`#/suppressions/${encodeURIComponent(app)}`));

  replace(
    view,
    h(
      'section',
      { class: 'card' },
      h('h1', {}, `WeCom suppressions: ${app}`),
      h('p', { class: 'hint' }, 'Suppressed members get no message from campaigns of this app.'),
      appForm,
      addForm,
      addStatus,
      listSlot,
      h('div', { class: 'pager' }, first, next),
    ),
  );

  const load = async () => {
    const q = new URLSearchParams({ limit: '50' });
    if (after) q.set('after', after);
    let page;
    try {
      page = await api('GET', `/apps/${seg(app)}/suppressions?${q}`);
    } catch (err) {
      replace(listSlot, h('p', { class: 'error' }, `Could not list suppressions of ${app}: ${err.message}`));
      return;
    }
    next.disabled = !page.next_after;
    next.onclick = () => go(`#/suppressions/${encodeURIComponent(app)}?after=${encodeURIComponent(page.next_after)}`);
    if (page.users.length === 0) {
      replace(listSlot, h('p', { class: 'muted' }, 'Nobody is suppressed.'));
      return;
    }
    replace(
      listSlot,
      table(
        ['Member', 'Why', 'Since', ''],
        page.users.map((u) =>
          h(
            'tr',
            { 'data-user': u.user },
            h('td', {}, u.user),
            h('td', {}, u.reason),
            h('td', {}, when(u.since)),
            h(
              'td',
              {},
              h(
                'button',
                {
                  type: 'button',
                  class: 'link',
                  onclick: async () => {
                    try {
                      await api('DELETE', `/apps/${seg(app)}/suppressions/${seg(u.user)}`);
                      addStatus.textContent = `Lifted the suppression of ${u.user}.`;
                    } catch (err) {
                      addStatus.textContent = `Could not lift ${u.user}: ${err.message}`;
                    }
                    load();
                  },
                },
                `Remove ${u.user}`,
              ),
            ),
          ),
        ),
        { id: 'supp-table' },
      ),
    );
  };

  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const user = userInput.value.trim();
    if (!user) {
      addStatus.textContent = 'Enter a member id.';
      return;
    }
    try {
      await api('PUT', `/apps/${seg(app)}/suppressions/${seg(user)}`);
      addStatus.textContent = `Suppressed ${user}.`;
      userInput.value = '';
    } catch (err) {
      addStatus.textContent = `Could not suppress ${user}${err.field ? ` (${err.field})` : ''}: ${err.message}`;
    }
    load();
  });
  load();
  return null;
}
