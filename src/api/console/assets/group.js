// A task group's campaigns side by side (the A/B view): each campaign's state, size and result
// shares in one table, and each one's share chart next to the others'.

import { api, seg } from './api.js';
import { h, replace, field, table, every } from './dom.js';
import { int, pct, rate } from './format.js';
import { barChart } from './chart.js';
import { stateBadge } from './list.js';
import { sortedResults } from './campaign.js';

const REFRESH_MS = 3000;

function picker(go, initial) {
  const input = h('input', { id: 'group-name', name: 'group', type: 'text', value: initial || '', pattern: '[A-Za-z0-9_-]{1,100}', required: true });
  const form = h(
    'form',
    { class: 'filters', id: 'group-form', novalidate: true },
    field('Task group', input, 'The settings.group of the campaigns to compare.'),
    h('button', { type: 'submit' }, 'Compare'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value.trim()) go(`#/groups/${encodeURIComponent(input.value.trim())}`);
  });
  return form;
}

export function render(view, params, go) {
  const group = params.group;
  const body = h('div', { id: 'group-body' });
  replace(view, h('section', { class: 'card' }, h('h1', {}, group ? `Group ${group}` : 'Compare a task group'), picker(go, group)), body);
  if (!group) {
    replace(body, h('p', { class: 'muted card' }, 'Campaigns created with the same task group are compared here.'));
    return null;
  }
  let lastSeen = null;
  const load = async () => {
    let report;
    try {
      report = await api('GET', `/groups/${seg(group)}/report`);
    } catch (err) {
      lastSeen = null;
      replace(body, h('p', { class: 'error card' }, `No report for group ${group}: ${err.message}`));
      return;
    }
    // Unchanged data leaves the page alone, so keyboard focus inside it stays put.
    const seen = JSON.stringify(report);
    if (seen === lastSeen) return;
    lastSeen = seen;
    const reports = report.campaigns;
    const codes = sortedResults(report.results).map(([code]) => code);
    const totalOf = (r) => Object.values(r.results).reduce((a, v) => a + v, 0);
    const head = ['', ...reports.map((r) => h('a', { href: `#/campaigns/${r.campaign.id}` }, `${r.campaign.name} (#${r.campaign.id})`))];
    const row = (label, cells, attrs = {}) => h('tr', attrs, h('th', { scope: 'row' }, label), cells.map((c) => h('td', { class: 'num' }, c)));
    const rows = [
      row('State', reports.map((r) => stateBadge(r.campaign.state))),
      row('Recipients', reports.map((r) => int(r.campaign.recipients.total))),
      row('Sent', reports.map((r) => int(r.campaign.progress.sent))),
      row('Delivered', reports.map((r) => `${int(r.delivered)} (${pct(r.delivered, totalOf(r))})`)),
      row('Failed', reports.map((r) => `${int(r.failed)} (${pct(r.failed, totalOf(r))})`)),
      row('Average rate', reports.map((r) => rate(r.recipients_per_sec))),
      ...codes.map((code) =>
        row(
          code,
          reports.map((r) => `${pct(r.results[code] || 0, totalOf(r))} (${int(r.results[code] || 0)})`),
          { 'data-code': code },
        ),
      ),
    ];
    replace(
      body,
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Side by side'),
        table(head, rows, { id: 'group-table', class: 'compare' }),
      ),
      h(
        'div',
        { class: 'side-by-side', id: 'group-charts' },
        reports.map((r) =>
          h(
            'section',
            { class: 'card', 'data-id': r.campaign.id },
            h('h2', {}, r.campaign.name, ' ', stateBadge(r.campaign.state)),
            h('p', { class: 'muted' }, `#${r.campaign.id} · ${int(r.campaign.recipients.total)} recipients`),
            barChart(
              codes.map((code) => [code, r.results[code] || 0]),
              { total: totalOf(r), title: `Result shares of ${r.campaign.name}` },
            ),
          ),
        ),
      ),
    );
  };
  return every(REFRESH_MS, load);
}
