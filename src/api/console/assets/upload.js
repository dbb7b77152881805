// Uploading recipients from a file (one cid a line, or NDJSON `{"cid", "vars"}`), with a
// progress bar, the accepted/duplicate/rejected counts and the first rejected lines.

import { uploadRecipients } from './api.js';
import { h, replace, field, table } from './dom.js';
import { int } from './format.js';

const NDJSON = 'application/x-ndjson';

function guessType(file) {
  return /\.(nd)?jsonl?$|\.ndjson$/i.test(file.name) ? NDJSON : 'text/plain';
}

/** The file, with a final line end added when it lacks one (the API refuses a cut-off line). */
async function withFinalNewline(file) {
  if (file.size === 0) return file;
  const last = new Uint8Array(await file.slice(-1).arrayBuffer())[0];
  return last === 0x0a ? file : new Blob([file, '\n']);
}

/** The upload form of draft campaign `id`; `onDone(answer)` after a successful upload. */
export function uploadForm(id, onDone) {
  const fileInput = h('input', { id: 'recipients-file', name: 'file', type: 'file', accept: '.txt,.csv,.ndjson,.jsonl,.json,text/plain' });
  const format = h(
    'select',
    { id: 'recipients-format', name: 'format' },
    h('option', { value: '' }, 'from the file name (.ndjson/.jsonl: NDJSON, else text)'),
    h('option', { value: 'text/plain' }, 'text: one id a line'),
    h('option', { value: NDJSON }, 'NDJSON: {"cid": …, "vars": {…}} a line'),
  );
  const bar = h('progress', { id: 'upload-progress', max: 1, value: 0, 'aria-label': 'upload progress' });
  const barText = h('span', { class: 'muted', id: 'upload-progress-text' });
  const status = h('p', { class: 'status', role: 'status', id: 'upload-status' });
  const result = h('div', { id: 'upload-result' });
  const button = h('button', { type: 'submit', id: 'upload-submit' }, 'Upload');
  const form = h(
    'form',
    { id: 'upload-form', class: 'upload', novalidate: true },
    h('h2', {}, 'Upload recipients'),
    field('Recipients file', fileInput, 'Getui: a cid (32 hex digits) a line, or NDJSON with vars. WeCom: a member id a line.'),
    field('Format', format),
    h('div', { class: 'actions' }, button),
    h('div', { class: 'progress-cell' }, bar, barText),
    status,
    result,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = fileInput.files[0];
    if (!file) {
      status.textContent = 'Choose a file first.';
      fileInput.focus();
      return;
    }
    const type = format.value || guessType(file);
    button.disabled = true;
    status.textContent = `Uploading ${file.name} (${int(file.size)} bytes, ${type})…`;
    replace(result);
    try {
      const blob = await withFinalNewline(file);
      const answer = await uploadRecipients(id, blob, type, (loaded, total) => {
        bar.max = Math.max(total, 1);
        bar.value = loaded;
        barText.textContent = `${Math.round((100 * loaded) / Math.max(total, 1))}%`;
      });
      status.textContent = `Uploaded ${file.name}.`;
      replace(
        result,
        h(
          'dl',
          { class: 'counts', id: 'upload-counts' },
          h('dt', {}, 'Accepted'),
          h('dd', { 'data-count': 'accepted' }, int(answer.accepted)),
          h('dt', {}, 'Duplicates'),
          h('dd', { 'data-count': 'duplicates' }, int(answer.duplicates)),
          h('dt', {}, 'Rejected'),
          h('dd', { 'data-count': 'rejected' }, int(answer.rejected)),
          h('dt', {}, 'Campaign total'),
          h('dd', { 'data-count': 'campaign_total' }, int(answer.campaign_total)),
        ),
        answer.first_rejected.length
          ? [
              h('h3', {}, 'First rejected lines'),
              table(
                ['Line', 'Why'],
                answer.first_rejected.map((r) => [String(r.line), r.reason]),
                { id: 'rejected-lines' },
              ),
            ]
          : null,
      );
      onDone(answer);
    } catch (err) {
      status.textContent = `Upload refused${err.field ? ` (${err.field})` : ''}: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
