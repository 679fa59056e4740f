// Shared helpers for the compatibility tests. Not a test file itself (node --test only
// runs *.test.mjs here).
import assert from 'node:assert/strict';
import http from 'node:http';
import Browserbase from '@browserbasehq/sdk';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// RFC 3339 date-time with a mandatory zone (Z or ±hh:mm).
export const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
export const REGIONS = ['us-west-2', 'us-east-1', 'eu-central-1', 'ap-southeast-1'];
export const STATUSES = ['PENDING', 'RUNNING', 'ERROR', 'TIMED_OUT', 'COMPLETED'];

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run the suite with compat/run.sh`);
  return v;
}

export const baseURL = () => required('BROWSERBASE_BASE_URL');
export const apiKey = () => required('BROWSERBASE_API_KEY');
export const chromePath = () => process.env.CHROME_PATH || '/usr/bin/chromium';

/** client returns an SDK client the way users build one. */
export function client(opts = {}) {
  return new Browserbase({ apiKey: apiKey(), baseURL: baseURL(), ...opts });
}

let cachedProjectID;
/** projectID is BROWSERBASE_PROJECT_ID, or the first project GET /v1/projects lists. */
export async function projectID() {
  if (process.env.BROWSERBASE_PROJECT_ID) return process.env.BROWSERBASE_PROJECT_ID;
  if (!cachedProjectID) {
    const ps = await client().projects.list();
    cachedProjectID = ps[0].id;
  }
  return cachedProjectID;
}

/**
 * Sessions records every session a test creates so that an after() hook can release
 * them all, whatever happened in the test.
 */
export class Sessions {
  constructor(bb = client()) {
    this.bb = bb;
    this.ids = new Set();
  }
  async create(params = {}, opts) {
    const s = await this.bb.sessions.create(params, opts);
    this.ids.add(s.id);
    return s;
  }
  track(id) {
    this.ids.add(id);
  }
  async releaseAll() {
    const errs = [];
    for (const id of this.ids) {
      try {
        await this.bb.sessions.update(id, { status: 'REQUEST_RELEASE' });
      } catch (e) {
        errs.push(`${id}: ${e.message}`);
      }
    }
    this.ids.clear();
    if (errs.length) console.error('release in cleanup failed:', errs.join('; '));
  }
}

/** waitFor polls fn until it returns a truthy value or the timeout passes; returns that value. */
export async function waitFor(fn, { timeout = 5000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** waitForStatus polls GET /v1/sessions/{id} until status is want; returns the session. */
export async function waitForStatus(bb, id, want, timeout = 5000) {
  let last;
  try {
    return await waitFor(
      async () => {
        last = await bb.sessions.retrieve(id);
        return last.status === want ? last : null;
      },
      { timeout, what: `session ${id} to be ${want}` },
    );
  } catch (e) {
    e.message += ` (last status ${last?.status})`;
    throw e;
  }
}

/**
 * startPageServer serves a small HTML page with a marker on 127.0.0.1:0 (the browser runs
 * on the same machine as the server under test). Returns {url, marker, requests, close}.
 */
export async function startPageServer() {
  const marker = `compat-marker-${Math.random().toString(36).slice(2)}`;
  const state = { requests: 0 };
  const srv = http.createServer((req, res) => {
    state.requests++;
    if (req.url === '/favicon.ico') {
      res.writeHead(404).end();
      return;
    }
    const page = req.url.split('?')[0];
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html>
<html><head><title>compat ${page}</title></head>
<body style="background:#fafafa">
<h1 id="marker">${marker}</h1>
<p id="path">${page}</p>
<div style="width:300px;height:200px;background:linear-gradient(90deg,#c33,#33c)"></div>
</body></html>`);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    marker,
    state,
    close: () =>
      new Promise((resolve) => {
        srv.closeAllConnections?.();
        srv.close(() => resolve());
      }),
  };
}

/** assertSessionShape checks the fields every Session object carries (spec §2.2). */
export function assertSessionShape(s, { projectId } = {}) {
  assert.equal(typeof s, 'object');
  assert.match(s.id, UUID_RE, 'id is a uuid');
  for (const f of ['createdAt', 'updatedAt', 'startedAt', 'expiresAt']) {
    assert.equal(typeof s[f], 'string', `${f} is a string`);
    assert.match(s[f], RFC3339_RE, `${f} is RFC 3339 with a zone: ${s[f]}`);
    assert.ok(!Number.isNaN(Date.parse(s[f])), `${f} parses`);
  }
  if (s.endedAt !== undefined && s.endedAt !== null) assert.match(s.endedAt, RFC3339_RE, 'endedAt RFC 3339');
  assert.ok(STATUSES.includes(s.status), `status ${s.status} is a SessionStatus`);
  assert.ok(REGIONS.includes(s.region), `region ${s.region} is a Region`);
  assert.equal(typeof s.keepAlive, 'boolean', 'keepAlive is boolean');
  assert.equal(s.proxyBytes, 0, 'proxyBytes is 0');
  assert.equal(typeof s.projectId, 'string');
  if (projectId) assert.equal(s.projectId, projectId, 'projectId');
}

/** assertConnectable checks connectUrl, seleniumRemoteUrl and signingKey (spec §2.3). */
export function assertConnectable(s) {
  const base = new URL(baseURL());
  assert.equal(typeof s.connectUrl, 'string', 'connectUrl present');
  const c = new URL(s.connectUrl);
  assert.equal(c.protocol, 'ws:', `connectUrl is ws:// (${s.connectUrl.replace(/signingKey=[^&]+/, 'signingKey=…')})`);
  assert.equal(c.host, base.host, 'connectUrl points at the server the client used');
  assert.equal(typeof s.seleniumRemoteUrl, 'string', 'seleniumRemoteUrl present');
  const sel = new URL(s.seleniumRemoteUrl);
  assert.equal(sel.protocol, 'http:', 'seleniumRemoteUrl is http://');
  assert.equal(sel.host, base.host, 'seleniumRemoteUrl points at the server the client used');
  assert.equal(typeof s.signingKey, 'string', 'signingKey present');
  assert.ok(s.signingKey.length >= 16, 'signingKey is not trivially short');
  assert.equal(c.searchParams.get('signingKey'), s.signingKey, 'connectUrl carries ?signingKey= (spec §4.1)');
}

/** median of numbers. */
export function median(xs) {
  const a = [...xs].sort((x, y) => x - y);
  const m = Math.floor(a.length / 2);
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}

/** redact hides the signing key in a connect URL for messages. */
export const redact = (u) => String(u).replace(/signingKey=[^&]+/, 'signingKey=…');
