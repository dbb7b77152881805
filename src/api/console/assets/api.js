// The only way the console talks to the daemon: `/v1` on this origin, with the signed-in token
// as the bearer token. The token lives in this tab's sessionStorage and nowhere else (never a
// URL, never a cookie).

const TOKEN_KEY = 'campaignd.console.token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A refusal of `/v1`: its status and the `{code, field, message, state}` of its body. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `the daemon answered HTTP ${status}`);
    this.status = status;
    this.code = e.code || (status === 0 ? 'network' : 'http');
    this.field = e.field || null;
    this.state = e.state || null;
  }
}

let onUnauthorized = () => {};

/** Sets what happens on a 401 (the app signs out and says why). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

function authHeaders() {
  return { Authorization: `Bearer ${token.get() || ''}` };
}

/**
 * Calls `/v1{path}`; answers the parsed JSON (null for 204) or throws an ApiError. A 401 signs
 * the tab out unless `signOutOn401` is false (the sign-in page reports it itself).
 */
export async function api(method, path, body, { signOutOn401 = true } = {}) {
  const headers = authHeaders();
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(`/v1${path}`, {
      method,
      headers,
      body: payload,
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, { error: { code: 'network', message: `the daemon did not answer (${e.message})` } });
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, json);
    if (resp.status === 401 && signOutOn401) onUnauthorized(err);
    throw err;
  }
  return json;
}

/** A path segment, escaped (ids, group names, app names and member ids come from users). */
export const seg = (s) => encodeURIComponent(String(s));

/**
 * Streams `blob` to `/v1/campaigns/{id}/recipients` as `contentType`, reporting sent bytes to
 * `onProgress(loaded, total)`. XMLHttpRequest rather than fetch: only it reports upload progress.
 */
export function uploadRecipients(id, blob, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/v1/campaigns/${seg(id)}/recipients`);
    xhr.setRequestHeader('Authorization', authHeaders().Authorization);
    xhr.setRequestHeader('Content-Type', contentType);
    xhr.withCredentials = false;
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener('load', () => {
      let json = null;
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        json = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(blob.size, blob.size);
        resolve(json);
      } else {
        const err = new ApiError(xhr.status, json);
        if (xhr.status === 401) onUnauthorized(err);
        reject(err);
      }
    });
    xhr.addEventListener('error', () =>
      reject(new ApiError(0, { error: { code: 'network', message: 'the upload was cut off' } })),
    );
    xhr.send(blob);
  });
}
