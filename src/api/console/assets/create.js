// The campaign form: every message kind, the audience conditions of app campaigns, speed,
// schedule (entered in Beijing time, echoed in local time), task group, offline storage and its
// ttl, wifi-only, and the SMS fallback. The daemon validates; its field errors are shown beside
// the control whose `data-field` names that field.

import { api, ApiError } from './api.js';
import { h, replace, field } from './dom.js';
import { beijingInputToDate, beijingInputToRfc3339, local, beijing } from './format.js';

const KINDS = [
  ['notification', 'Notification'],
  ['link', 'Link (opens a web page)'],
  ['transmission', 'Transmission (pass-through payload)'],
  ['popup_download', 'Notification → popup → download'],
  ['wecom', 'WeCom message'],
];

const input = (id, fieldName, attrs = {}) =>
  h('input', { id, name: id, type: 'text', 'data-field': fieldName, ...attrs });
const textarea = (id, fieldName, attrs = {}) => h('textarea', { id, name: id, rows: 3, 'data-field': fieldName, ...attrs });
const select = (id, fieldName, options, attrs = {}) =>
  h(
    'select',
    { id, name: id, 'data-field': fieldName, ...attrs },
    options.map(([v, label]) => h('option', { value: v }, label)),
  );
const checkbox = (id, fieldName, labelText, checked) =>
  h(
    'div',
    { class: 'field check' },
    h('input', { id, name: id, type: 'checkbox', 'data-field': fieldName, checked }),
    h('label', { for: id }, labelText),
    h('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' }),
  );

/** Comma-separated (ASCII or Chinese comma) values, trimmed, blanks dropped. */
const listOf = (text) =>
  text
    .split(/[,，、]/)
    .map((v) => v.trim())
    .filter(Boolean);

function conditionRow(index, onRemove) {
  const row = h(
    'fieldset',
    { class: 'condition', 'data-field': `audience.conditions[${index}]` },
    h('legend', {}, `Condition ${index + 1}`),
    field(
      'Key',
      select(`cond-${index}-key`, `audience.conditions[${index}].key`, [
        ['phone_type', 'phone_type (android, ios)'],
        ['region', 'region (code or province/city, e.g. 浙江)'],
        ['custom_tag', 'custom_tag'],
        ['portrait', 'portrait'],
      ]),
    ),
    field('Values (comma-separated)', input(`cond-${index}-values`, `audience.conditions[${index}].values`)),
    field(
      'Combine values with',
      select(`cond-${index}-opt`, `audience.conditions[${index}].opt`, [
        ['or', 'or'],
        ['and', 'and'],
        ['not', 'not'],
      ]),
    ),
    h('button', { type: 'button', class: 'link', onclick: onRemove }, `Remove condition ${index + 1}`),
  );
  return row;
}

export function render(view, _params, go) {
  const form = h('form', { id: 'create-form', class: 'card', novalidate: true });
  const summary = h('div', { id: 'form-errors', class: 'error-summary', role: 'alert', hidden: true });

  // Basics.
  const basics = h(
    'fieldset',
    {},
    h('legend', {}, 'Campaign'),
    field('Name', input('name', 'name', { required: true, maxlength: 200 }), '1–100 characters.'),
    field(
      'App',
      input('app', 'app', { list: 'known-apps', value: 'main', required: true, autocomplete: 'off' }),
      'An app of the daemon configuration (the shipped one has main: Getui, staff: WeCom).',
    ),
    h('datalist', { id: 'known-apps' }, h('option', { value: 'main' }), h('option', { value: 'staff' })),
    field(
      'Send mode',
      select('mode', 'mode', [
        ['auto', 'auto (app with an audience, list without variables, else batch_single)'],
        ['list', 'list (same message to an uploaded list)'],
        ['batch_single', 'batch_single (per-recipient ${variables})'],
        ['app', 'app (whole app or audience conditions)'],
      ]),
    ),
  );

  // Message, one sub-form per kind.
  const kind = select('kind', 'message', KINDS);
  const clickType = select('click-type', 'message.notification.click_type', [
    ['startapp', 'open the app'],
    ['url', 'open a URL'],
    ['intent', 'Android intent'],
    ['payload', 'payload to the app'],
    ['none', 'nothing'],
  ]);
  const wecomType = select('wecom-type', 'message.wecom.msgtype', [
    ['text', 'text'],
    ['markdown', 'markdown'],
    ['textcard', 'textcard'],
  ]);
  const parts = {
    notification: h(
      'div',
      { class: 'kind', 'data-kind': 'notification' },
      field('Title', input('n-title', 'message.notification.title'), '1–50 characters (after ${variables} are filled in).'),
      field('Body', textarea('n-body', 'message.notification.body'), '1–256 characters.'),
      field('On tap', clickType),
      field('URL (for "open a URL")', input('n-url', 'message.notification.url', { type: 'url' })),
      field('Intent (for "Android intent")', input('n-intent', 'message.notification.intent')),
      field('Payload (for "payload to the app")', input('n-payload', 'message.notification.payload')),
    ),
    link: h(
      'div',
      { class: 'kind', 'data-kind': 'link', hidden: true },
      field('Title', input('l-title', 'message.link.title')),
      field('Body', textarea('l-body', 'message.link.body')),
      field('Page URL', input('l-url', 'message.link.url', { type: 'url' })),
    ),
    transmission: h(
      'div',
      { class: 'kind', 'data-kind': 'transmission', hidden: true },
      field('Payload', textarea('t-content', 'message.transmission'), 'Handed to the app as it is, ≤ 3072 characters.'),
    ),
    popup_download: h(
      'div',
      { class: 'kind', 'data-kind': 'popup_download', hidden: true },
      field('Notification title', input('p-title', 'message.popup_download.title')),
      field('Notification body', textarea('p-body', 'message.popup_download.body')),
      field('Popup title', input('p-popup-title', 'message.popup_download.popup_title')),
      field('Popup text', textarea('p-popup-content', 'message.popup_download.popup_content')),
      field('Download title', input('p-download-title', 'message.popup_download.download_title')),
      field('Download URL', input('p-download-url', 'message.popup_download.download_url', { type: 'url' })),
    ),
    wecom: h(
      'div',
      { class: 'kind', 'data-kind': 'wecom', hidden: true },
      field('WeCom message type', wecomType),
      field('Content (text, markdown)', textarea('w-content', 'message.wecom.text.content'), '1–2048 bytes.'),
      field('Card title (textcard)', input('w-title', 'message.wecom.textcard.title')),
      field('Card description (textcard)', textarea('w-description', 'message.wecom.textcard.description')),
      field('Card URL (textcard)', input('w-url', 'message.wecom.textcard.url', { type: 'url' })),
      field('Button text (textcard)', input('w-btntxt', 'message.wecom.textcard.btntxt', { maxlength: 8 })),
    ),
  };
  const showKind = () => {
    for (const [k, el] of Object.entries(parts)) el.hidden = k !== kind.value;
  };
  kind.addEventListener('change', showKind);
  const message = h('fieldset', {}, h('legend', {}, 'Message'), field('Kind', kind), Object.values(parts));

  // Audience (app campaigns).
  const conditions = h('div', { id: 'conditions' });
  let rows = 0;
  const renumber = () => {
    // Rebuilt so the field names match the index the API reports errors at.
    const values = [...conditions.querySelectorAll('fieldset.condition')].map((row) => [
      ...row.querySelectorAll('select, input'),
    ].map((c) => c.value));
    conditions.replaceChildren();
    rows = 0;
    for (const v of values) addCondition(v);
  };
  const addCondition = (values) => {
    const index = rows++;
    const row = conditionRow(index, () => {
      row.remove();
      renumber();
    });
    if (values) [...row.querySelectorAll('select, input')].forEach((c, i) => (c.value = values[i]));
    conditions.append(row);
    return row;
  };
  const audience = h(
    'fieldset',
    { 'data-field': 'audience' },
    h('legend', {}, 'Audience (app campaigns)'),
    h('p', { class: 'hint' }, 'Conditions are ANDed; none means the whole app. List and batch campaigns get recipients by upload instead.'),
    conditions,
    h(
      'button',
      {
        type: 'button',
        id: 'add-condition',
        onclick: () => addCondition().querySelector('select').focus(),
      },
      'Add condition',
    ),
  );

  // Settings.
  const schedule = input('schedule', 'settings.schedule_at', { type: 'datetime-local' });
  const scheduleEcho = h('p', { class: 'hint', id: 'schedule-echo', 'aria-live': 'polite' }, 'Starts when you press Start.');
  schedule.addEventListener('input', () => {
    const d = beijingInputToDate(schedule.value);
    scheduleEcho.textContent = d ? `${beijing(d)} Beijing time = ${local(d)} your local time` : 'Starts when you press Start.';
  });
  const smsOn = checkbox('sms-on', 'settings.sms_fallback', 'Text (SMS) the recipients the push does not reach', false);
  const smsPart = h(
    'div',
    { id: 'sms-part', hidden: true },
    field('SMS template id', input('sms-template', 'settings.sms_fallback.template_id'), 'A template of the app’s [apps.NAME.sms].'),
    field('Template parameters (comma-separated)', input('sms-params', 'settings.sms_fallback.params'), '${variables} allowed in batch campaigns.'),
    field('Text after (ms)', input('sms-after', 'settings.sms_fallback.after_ms', { type: 'number', min: 0, value: 60000 })),
  );
  smsOn.querySelector('input').addEventListener('change', (e) => {
    smsPart.hidden = !e.target.checked;
  });
  const settings = h(
    'fieldset',
    {},
    h('legend', {}, 'Delivery'),
    field('Speed (messages per second)', input('speed', 'settings.speed', { type: 'number', min: 1 }), 'Empty: no limit.'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'schedule' }, 'Start at (Beijing time, UTC+8)'),
      schedule,
      scheduleEcho,
      h('p', { class: 'field-error', id: 'schedule-error', 'aria-live': 'polite' }),
    ),
    field('Task group', input('group', 'settings.group', { pattern: '[A-Za-z0-9_-]{1,100}' }), 'Letters, digits, - and _; campaigns of one group are compared side by side.'),
    checkbox('offline', 'settings.offline', 'Keep for offline devices', true),
    field('Offline time to live (ms)', input('ttl', 'settings.ttl_ms', { type: 'number', min: -1 }), 'Empty: 1 hour; at most 259200000 (3 days).'),
    checkbox('wifi-only', 'settings.network_type', 'Wi-Fi only', false),
    smsOn,
    smsPart,
  );

  const submit = h('button', { type: 'submit', class: 'primary', id: 'create-submit' }, 'Create draft');
  const status = h('p', { class: 'status', role: 'status', id: 'create-status' });
  replace(form, h('h1', {}, 'New campaign'), summary, basics, message, audience, settings, h('div', { class: 'actions' }, submit), status);
  replace(view, form);

  const value = (id) => form.querySelector(`#${id}`).value.trim();
  const checked = (id) => form.querySelector(`#${id}`).checked;
  const number = (id) => {
    const v = value(id);
    return v === '' ? undefined : Number(v);
  };
  const drop = (obj) => Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== ''));

  const buildMessage = () => {
    switch (kind.value) {
      case 'notification': {
        const ct = clickType.value;
        return {
          notification: drop({
            title: value('n-title'),
            body: value('n-body'),
            click_type: ct,
            url: ct === 'url' ? value('n-url') : undefined,
            intent: ct === 'intent' ? value('n-intent') : undefined,
            payload: ct === 'payload' ? value('n-payload') : undefined,
          }),
        };
      }
      case 'link':
        return { link: drop({ title: value('l-title'), body: value('l-body'), url: value('l-url') }) };
      case 'transmission':
        return { transmission: form.querySelector('#t-content').value };
      case 'popup_download':
        return {
          popup_download: drop({
            title: value('p-title'),
            body: value('p-body'),
            popup_title: value('p-popup-title'),
            popup_content: value('p-popup-content'),
            download_title: value('p-download-title'),
            download_url: value('p-download-url'),
          }),
        };
      default: {
        const t = wecomType.value;
        if (t === 'textcard') {
          return {
            wecom: {
              msgtype: t,
              textcard: drop({
                title: value('w-title'),
                description: value('w-description'),
                url: value('w-url'),
                btntxt: value('w-btntxt'),
              }),
            },
          };
        }
        return { wecom: { msgtype: t, [t]: { content: form.querySelector('#w-content').value } } };
      }
    }
  };

  const buildBody = () => {
    const body = { name: value('name'), app: value('app'), mode: form.querySelector('#mode').value, message: buildMessage() };
    const settingsBody = drop({
      speed: number('speed'),
      schedule_at: beijingInputToRfc3339(schedule.value) || undefined,
      group: value('group'),
      ttl_ms: number('ttl'),
    });
    if (!checked('offline')) settingsBody.offline = false;
    if (checked('wifi-only')) settingsBody.network_type = 'wifi';
    if (checked('sms-on')) {
      settingsBody.sms_fallback = drop({
        template_id: value('sms-template'),
        params: listOf(value('sms-params')),
        after_ms: number('sms-after'),
      });
    }
    if (Object.keys(settingsBody).length) body.settings = settingsBody;
    const conds = [...conditions.querySelectorAll('fieldset.condition')].map((row) => {
      const [key, values, opt] = row.querySelectorAll('select, input');
      return { key: key.value, values: listOf(values.value), opt: opt.value };
    });
    if (conds.length) body.audience = { conditions: conds };
    return body;
  };

  const clearErrors = () => {
    for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
    for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    summary.hidden = true;
    summary.replaceChildren();
  };

  /** The control an API field path names: exact, else the longest control path it starts with. */
  const controlFor = (path) => {
    if (!path) return null;
    const controls = [...form.querySelectorAll('[data-field]')].filter((c) => !c.closest('[hidden]'));
    const exact = controls.find((c) => c.dataset.field === path);
    if (exact) return exact;
    const prefixes = controls
      .filter((c) => path.startsWith(`${c.dataset.field}.`) || path.startsWith(`${c.dataset.field}[`))
      .sort((a, b) => b.dataset.field.length - a.dataset.field.length);
    return prefixes[0] || null;
  };

  const showError = (err) => {
    const control = err.field ? controlFor(err.field) : null;
    summary.hidden = false;
    replace(
      summary,
      h('p', {}, `The daemon refused the campaign${err.field ? ` (field ${err.field})` : ''}: ${err.message}`),
    );
    if (!control) return;
    // A fieldset (a whole condition) has no error slot of its own: use its first control's.
    const target = control.matches('input, select, textarea') ? control : control.querySelector('input, select, textarea');
    if (!target) return;
    const slot = form.querySelector(`#${target.id}-error`);
    if (slot) slot.textContent = err.message;
    target.setAttribute('aria-invalid', 'true');
    target.focus();
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    submit.disabled = true;
    status.textContent = 'Creating…';
    try {
      const created = await api('POST', '/campaigns', buildBody());
      status.textContent = `Created campaign ${created.id}.`;
      go(`#/campaigns/${created.id}`);
    } catch (err) {
      status.textContent = '';
      if (err instanceof ApiError) showError(err);
      else throw err;
    } finally {
      submit.disabled = false;
    }
  });
  form.querySelector('#name').focus();
}
