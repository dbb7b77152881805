// The campaign list: state, progress, rate and ETA of one page of campaigns, filtered by state,
// paged with the API's `next_after`, and refreshed every two seconds.

import { api } from './api.js';
import { h, replace, table, every } from './dom.js';
import { int, rate, eta, pct, STATES } from './format.js';

const REFRESH_MS = 2000;

/** Progress of a campaign as a bar and "sent / total". */
export function progressCell(c) {
  const total = c.recipients.total;
  const sent = c.progress.sent;
  return h(
    'div',
    { class: 'progress-cell' },
    h('progress', { max: Math.max(total, 1), value: sent, 'aria-label': `progress of campaign ${c.id}` }),
    h('span', { class: 'muted' }, `${int(sent)} / ${int(total)} (${pct(sent, total)})`),
  );
}

export function stateBadge(state) {
  return h('span', { class: `state state-${state}` }, state);
}

export function render(view, params, go) {
  const stateFilter = params.state || '';
  const limit = Number(params.limit) || 20;
  // Pages already seen, so "Previous" can go back (the API pages forward only).
  const after = params.after || '';
  const back = (params.back || '').split(',').filter(Boolean);

  const select = h(
    'select',
    { id: 'state-filter', name: 'state' },
    h('option', { value: '' }, 'all states'),
    STATES.map((s) => h('option', { value: s, selected: s === stateFilter }, s)),
  );
  const perPage = h(
    'select',
    { id: 'per-page', name: 'limit' },
    [10, 20, 50, 100].map((n) => h('option', { value: n, selected: n === limit }, String(n))),
  );
  const link = (state, lim, aft, bk) => {
    const q = new URLSearchParams();
    if (state) q.set('state', state);
    if (lim !== 20) q.set('limit', lim);
    if (aft) q.set('after', aft);
    if (bk.length) q.set('back', bk.join(','));
    const qs = q.toString();
    return `#/campaigns${qs ? `?${qs}` : ''}`;
  };
  select.addEventListener('change', () => go(link(select.value, limit, '', [])));
  perPage.addEventListener('change', () => go(link(stateFilter, Number(perPage.value), '', [])));

  const body = h('div', { id: 'campaign-table' }, h('p', { class: 'muted' }, 'Loading…'));
  const prev = h('button', { type: 'button', id: 'prev-page', disabled: !after }, '← Previous');
  const next = h('button', { type: 'button', id: 'next-page', disabled: true }, 'Next →');
  const updated = h('p', { class: 'muted', id: 'list-updated', 'aria-live': 'off' });
  let nextAfter = null;
  let lastSeen = null;
  prev.addEventListener('click', () => {
    const bk = back.slice();
    const target = bk.pop() || '';
    go(link(stateFilter, limit, target === '-' ? '' : target, bk));
  });
  next.addEventListener('click', () => {
    if (nextAfter) go(link(stateFilter, limit, nextAfter, [...back, after || '-']));
  });

  replace(
    view,
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'title-row' }, h('h1', {}, 'Campaigns'), h('a', { class: 'button primary', href: '#/new' }, 'New campaign')),
      h(
        'form',
        { class: 'filters', novalidate: true, onsubmit: (e) => e.preventDefault() },
        h('div', { class: 'field inline' }, h('label', { for: 'state-filter' }, 'State'), select),
        h('div', { class: 'field inline' }, h('label', { for: 'per-page' }, 'Per page'), perPage),
      ),
      body,
      h('div', { class: 'pager' }, prev, next),
      updated,
    ),
  );

  const load = async () => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (stateFilter) q.set('state', stateFilter);
    if (after) q.set('after', after);
    let page;
    try {
      page = await api('GET', `/campaigns?${q}`);
    } catch (err) {
      lastSeen = null;
      replace(body, h('p', { class: 'error' }, `Could not list campaigns: ${err.message}`));
      return;
    }
    nextAfter = page.next_after;
    next.disabled = !nextAfter;
    updated.textContent = `Refreshed ${new Date().toLocaleTimeString()} (every ${REFRESH_MS / 1000} s)`;
    // Unchanged data leaves the table alone, so keyboard focus inside it stays put.
    const seen = JSON.stringify(page);
    if (seen === lastSeen) return;
    lastSeen = seen;
    if (page.campaigns.length === 0) {
      replace(body, h('p', { class: 'muted' }, stateFilter ? `No ${stateFilter} campaigns here.` : 'No campaigns yet.'));
    } else {
      const rows = page.campaigns.map((c) =>
        h(
          'tr',
          { 'data-id': c.id, 'data-state': c.state },
          h('td', {}, h('a', { href: `#/campaigns/${c.id}` }, c.id)),
          h('td', { class: 'name' }, h('a', { href: `#/campaigns/${c.id}` }, c.name)),
          h('td', {}, c.app),
          h('td', {}, c.mode),
          h('td', {}, stateBadge(c.state)),
          h('td', {}, progressCell(c)),
          h('td', { class: 'num' }, rate(c.progress.rate_per_sec)),
          h('td', { class: 'num' }, c.state === 'running' ? eta(c.progress.eta_seconds) : '—'),
          h('td', {}, c.group ? h('a', { href: `#/groups/${encodeURIComponent(c.group)}` }, c.group) : '—'),
        ),
      );
      replace(body, table(['Id', 'Name', 'App', 'Mode', 'State', 'Progress', 'Rate', 'ETA', 'Group'], rows, { class: 'campaigns' }));
    }
  };
  return every(REFRESH_MS, load);
}
