// One campaign: its actions (each enabled only in the states that allow it), the upload of a
// draft, a live progress bar, results per code as a table and a bar chart, and the reach, click
// and SMS counts when the campaign has them. Refreshes every 1.5 s until the campaign is final.

import { api, seg } from './api.js';
import { h, replace, table, every } from './dom.js';
import { int, rate, eta, pct, when, FINAL_STATES } from './format.js';
import { barChart } from './chart.js';
import { stateBadge } from './list.js';
import { uploadForm } from './upload.js';

const REFRESH_MS = 1500;

/** Which states allow each action (the daemon's state machine; the daemon still decides). */
const ACTIONS = [
  ['start', 'Start', ['draft']],
  ['pause', 'Pause', ['running']],
  ['resume', 'Resume', ['paused']],
  ['cancel', 'Cancel', ['draft', 'scheduled', 'running', 'paused']],
  ['delete', 'Delete', ['draft', 'scheduled']],
];

function dl(pairs, attrs = {}) {
  return h(
    'dl',
    { class: 'facts', ...attrs },
    pairs.filter(Boolean).map(([k, v, key]) => [h('dt', {}, k), h('dd', key ? { 'data-key': key } : {}, v)]),
  );
}

/** Result names by count, largest first. */
export function sortedResults(results) {
  return Object.entries(results || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

export function render(view, params, go) {
  const id = params.id;
  const title = h('h1', { id: 'campaign-title' }, `Campaign ${id}`);
  const facts = h('div', { id: 'campaign-facts' });
  const status = h('p', { class: 'status', role: 'status', id: 'action-status' });
  const buttons = {};
  const actions = h(
    'div',
    { class: 'actions', id: 'campaign-actions', role: 'group', 'aria-label': 'Campaign actions' },
    ACTIONS.map(([action, label]) => {
      const b = h('button', { type: 'button', id: `action-${action}`, 'data-action': action, disabled: true }, label);
      buttons[action] = b;
      return b;
    }),
  );
  const progress = h('div', { id: 'campaign-progress' });
  const results = h('div', { id: 'campaign-results' });
  const reach = h('div', { id: 'campaign-reach' });
  const uploadSlot = h('div', { id: 'upload-slot' });
  replace(
    view,
    h(
      'section',
      { class: 'card' },
      h('p', {}, h('a', { href: '#/campaigns' }, '← All campaigns')),
      title,
      facts,
      actions,
      status,
    ),
    uploadSlot,
    h('section', { class: 'card' }, h('h2', {}, 'Progress'), progress),
    h('section', { class: 'card' }, h('h2', {}, 'Results per code'), results),
    reach,
  );

  let current = null;
  let stop = null;
  let uploadShown = false;

  const show = (report) => {
    const c = report.campaign;
    current = c;
    document.title = `${c.name} · campaignd console`;
    replace(title, `${c.name} `, stateBadge(c.state));
    title.dataset.state = c.state;
    replace(
      facts,
      dl([
        ['Id', c.id],
        ['App', `${c.app} (${c.channel})`],
        ['Mode', c.mode],
        ['Message', c.message_kind || '—'],
        ['Group', c.group ? h('a', { href: `#/groups/${encodeURIComponent(c.group)}` }, c.group) : '—'],
        ['Speed', c.speed ? `${int(c.speed)}/s` : 'no limit'],
        ['Created', when(c.created_at)],
        c.schedule_at ? ['Scheduled for', when(c.schedule_at)] : null,
        ['Started', when(c.started_at)],
        ['Finished', when(c.finished_at)],
        c.failure ? ['Failure', c.failure] : null,
        c.taskid ? ['Getui task', c.taskid] : null,
      ]),
    );
    for (const [action, , states] of ACTIONS) buttons[action].disabled = !states.includes(c.state);

    if (c.state === 'draft' && c.mode !== 'app' && !uploadShown) {
      uploadShown = true;
      replace(uploadSlot, h('section', { class: 'card' }, uploadForm(c.id, () => refreshNow())));
    } else if (c.state !== 'draft' && uploadShown) {
      uploadShown = false;
      replace(uploadSlot);
    }

    const total = c.recipients.total;
    const p = c.progress;
    replace(
      progress,
      h(
        'div',
        { class: 'progress-cell big' },
        h('progress', { id: 'progress-bar', max: Math.max(total, 1), value: p.sent, 'aria-label': 'recipients with a result' }),
        h('span', { id: 'progress-text' }, `${int(p.sent)} of ${int(total)} (${pct(p.sent, total)})`),
      ),
      dl(
        [
          ['Recipients', int(total), 'total'],
          ['Duplicates dropped', int(c.recipients.duplicates), 'duplicates'],
          ['Lines rejected', int(c.recipients.rejected), 'rejected'],
          ['Sent', int(p.sent), 'sent'],
          ['Pending', int(p.pending), 'pending'],
          ['Not sent (cancelled)', int(p.not_sent), 'not_sent'],
          ['Rate', rate(p.rate_per_sec), 'rate'],
          ['ETA', c.state === 'running' ? eta(p.eta_seconds) : '—', 'eta'],
          p.replayed ? ['Replayed after a crash', int(p.replayed), 'replayed'] : null,
          ['Duration', `${report.duration_seconds.toFixed(1)} s`, 'duration'],
          ['Average rate', rate(report.recipients_per_sec), 'avg_rate'],
        ],
        { id: 'progress-facts' },
      ),
    );

    const entries = sortedResults(report.results);
    const sum = entries.reduce((a, [, v]) => a + v, 0);
    if (entries.length === 0) {
      replace(results, h('p', { class: 'muted' }, 'No results yet.'));
    } else {
      replace(
        results,
        table(
          ['Result', 'Recipients', 'Share'],
          entries.map(([code, n]) => h('tr', { 'data-code': code }, h('td', {}, code), h('td', { class: 'num' }, int(n)), h('td', { class: 'num' }, pct(n, sum)))),
          { id: 'results-table' },
        ),
        dl([
          ['Delivered', int(report.delivered), 'delivered'],
          ['Failed', int(report.failed), 'failed'],
        ]),
        barChart(entries, { total: sum, title: `Results of campaign ${c.id} per code` }),
      );
    }

    const sms = report.sms || c.sms;
    const up = c.upstream;
    if (up || sms) {
      replace(
        reach,
        h(
          'section',
          { class: 'card', id: 'reach' },
          h('h2', {}, 'Reach, clicks and SMS'),
          up
            ? [
                h('h3', {}, `Getui's counts (fetched ${when(up.fetched_at)})`),
                dl([
                  ['Targeted', int(up.target_num)],
                  ['Received', int(up.receive_num)],
                  ['Displayed', int(up.display_num)],
                  ['Clicked', int(up.click_num)],
                ]),
              ]
            : null,
          sms
            ? [
                h('h3', {}, 'SMS fallback'),
                dl([
                  ['Reached by push', int(sms.reached), 'reached'],
                  ['Clicked', int(sms.clicked), 'clicked'],
                  ['Texts sent', int(sms.sms_sent), 'sms_sent'],
                  ['Texts delivered', int(sms.sms_delivered), 'sms_delivered'],
                  ['Maybe sent', int(sms.sms_maybe_sent)],
                  ['Stopped', sms.stopped ? 'yes' : 'no'],
                ]),
                Object.keys(sms.sms_failed || {}).length
                  ? table(['Failed code', 'Texts'], Object.entries(sms.sms_failed).map(([k, v]) => [k, int(v)]))
                  : null,
                Object.keys(sms.sms_skipped || {}).length
                  ? table(['Not texted because', 'Recipients'], Object.entries(sms.sms_skipped).map(([k, v]) => [k, int(v)]))
                  : null,
              ]
            : null,
        ),
      );
    } else {
      replace(reach);
    }
    return !FINAL_STATES.includes(c.state);
  };

  const load = async () => {
    try {
      const report = await api('GET', `/campaigns/${seg(id)}/report`);
      if (!show(report) && stop) {
        stop();
        stop = null;
      }
    } catch (err) {
      if (err.status === 404) {
        replace(facts, h('p', { class: 'error' }, `No campaign ${id}: ${err.message}`));
        for (const b of Object.values(buttons)) b.disabled = true;
        if (stop) stop();
        stop = null;
      } else {
        status.textContent = `Could not refresh: ${err.message}`;
      }
    }
  };
  const refreshNow = () => {
    if (stop) stop();
    stop = every(REFRESH_MS, load);
  };

  for (const [action, label] of ACTIONS) {
    buttons[action].addEventListener('click', async () => {
      if (!current) return;
      if ((action === 'cancel' || action === 'delete') && !window.confirm(`${label} campaign “${current.name}”? This cannot be undone.`)) {
        return;
      }
      for (const b of Object.values(buttons)) b.disabled = true;
      status.textContent = `${label}…`;
      try {
        if (action === 'delete') {
          await api('DELETE', `/campaigns/${seg(id)}`);
          go('#/campaigns');
          return;
        }
        const c = await api('POST', `/campaigns/${seg(id)}/${action}`);
        status.textContent = `${label}: the campaign is now ${c.state}.`;
      } catch (err) {
        status.textContent = `${label} refused${err.state ? ` (the campaign is ${err.state})` : ''}: ${err.message}`;
      }
      refreshNow();
    });
  }

  refreshNow();
  return () => {
    if (stop) stop();
    stop = null;
  };
}
