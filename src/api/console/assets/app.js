// The console's shell: a hash router (pages are `#/campaigns`, `#/campaigns/7`, …, so the
// server serves one page), the sign-in gate and the navigation. Each page module renders into
// <main> and answers a function that stops its refreshing when the user leaves the page.

import { token, whenUnauthorized } from './api.js';
import { replace } from './dom.js';
import * as signin from './signin.js';
import * as list from './list.js';
import * as create from './create.js';
import * as campaign from './campaign.js';
import * as group from './group.js';
import * as suppressions from './suppressions.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const flash = document.getElementById('flash');
let leave = null;

/** Shows a message above the page (an error a page could not place next to a field). */
export function say(text) {
  flash.textContent = text || '';
  flash.hidden = !text;
}

/** A path segment of the hash, decoded; a malformed escape stays as it is. */
function decoded(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const ROUTES = [
  [/^\/?$/, () => ['campaigns', list, {}]],
  [/^\/campaigns$/, () => ['campaigns', list, {}]],
  [/^\/new$/, () => ['new', create, {}]],
  [/^\/campaigns\/(\d+)$/, (m) => ['campaign', campaign, { id: m[1] }]],
  [/^\/groups$/, () => ['groups', group, {}]],
  [/^\/groups\/([^/]+)$/, (m) => ['group', group, { group: decoded(m[1]) }]],
  [/^\/suppressions$/, () => ['suppressions', suppressions, {}]],
  [/^\/suppressions\/([^/]+)$/, (m) => ['suppressions', suppressions, { app: decoded(m[1]) }]],
];

function route() {
  if (leave) leave();
  leave = null;
  const [path, query] = (location.hash.replace(/^#/, '') || '/').split('?');
  const params = Object.fromEntries(new URLSearchParams(query || ''));
  if (!token.get()) {
    nav.hidden = true;
    document.body.dataset.page = 'signin';
    leave = signin.render(view, params, go) || null;
    return;
  }
  nav.hidden = false;
  for (const [pattern, pick] of ROUTES) {
    const m = path.match(pattern);
    if (m) {
      const [name, page, pathParams] = pick(m);
      document.body.dataset.page = name;
      for (const a of nav.querySelectorAll('a')) {
        if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
      }
      leave = page.render(view, { ...params, ...pathParams }, go) || null;
      return;
    }
  }
  document.body.dataset.page = 'missing';
  replace(view, 'No such page.');
}

/** Moves to another page (`#/…`), or re-renders when already there. */
export function go(hash) {
  say('');
  if (location.hash === hash) route();
  else location.hash = hash;
}

whenUnauthorized((err) => {
  token.clear();
  say(`Signed out: the daemon refused the token (401 unauthorized). ${err.message}`);
  route();
});

document.getElementById('signout').addEventListener('click', () => {
  token.clear();
  say('Signed out.');
  route();
});

window.addEventListener('hashchange', () => {
  say('');
  route();
});
route();
