// Errors as the SDK sees them (spec §1.2, §1.5, §5.6, §7.3) and connect-URL credentials
// (spec §4.1).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import Browserbase from '@browserbasehq/sdk';
import { chromium } from 'playwright-core';
import { client, baseURL, projectID, Sessions, redact } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
after(() => sessions.releaseAll());

/** assertErrorBody checks the recommended error body (spec §1.5). */
function assertErrorBody(err, status) {
  assert.equal(err.status, status, `HTTP ${status}`);
  const body = err.error;
  assert.equal(typeof body, 'object', `error body is JSON, got ${JSON.stringify(body)}`);
  assert.equal(typeof body.message, 'string', 'body.message is a string');
  assert.ok(body.message.length > 0, 'body.message is not empty');
  assert.equal(body.statusCode, status, 'body.statusCode');
  assert.equal(body.code, status, 'body.code');
  assert.equal(typeof body.error, 'string', 'body.error (reason phrase)');
  assert.ok(err.message.includes(body.message), `SDK message "${err.message}" is built from body.message`);
}

/** countingClient returns an SDK client whose requests are counted. */
function countingClient(key) {
  const calls = [];
  const c = new Browserbase({
    apiKey: key,
    baseURL: baseURL(),
    fetch: async (url, init) => {
      const res = await globalThis.fetch(url, init);
      const h = init?.headers ?? {};
      const retry = typeof h.get === 'function' ? h.get('x-stainless-retry-count') : h['x-stainless-retry-count'];
      calls.push({ method: init?.method, url: String(url), status: res.status, retry });
      return res;
    },
  });
  return { c, calls };
}

test('400: timeout below 60 → BadRequestError (not retried)', async () => {
  const { c, calls } = countingClient(process.env.BROWSERBASE_API_KEY);
  const err = await c.sessions.create({ api_timeout: 59 }).then(
    (s) => { sessions.track(s.id); assert.fail('create with timeout 59 succeeded'); },
    (e) => e,
  );
  assert.ok(err instanceof Browserbase.BadRequestError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.ok(err instanceof Browserbase.APIError);
  assertErrorBody(err, 400);
  assert.match(err.message, /timeout/i, 'message names the field');
  assert.equal(calls.length, 1, '400 is not retried');

  for (const bad of [{ api_timeout: 21601 }, { region: 'mars-north-1' }, { browserSettings: { os: 'beos' } }]) {
    const e = await c.sessions.create(bad).then((s) => { sessions.track(s.id); return null; }, (e) => e);
    assert.ok(e instanceof Browserbase.BadRequestError, `${JSON.stringify(bad)} → 400, got ${e?.constructor?.name ?? 'success'}`);
  }
  const e = await c.sessions.update(randomUUID(), { status: 'RUNNING' }).then(() => null, (e) => e);
  assert.ok(e instanceof Browserbase.BadRequestError || e instanceof Browserbase.NotFoundError,
    `update with status RUNNING → 400 (or 404 for the unknown id), got ${e?.constructor?.name ?? 'success'}`);
});

test('400: a boundary timeout of 60 is accepted', async () => {
  const s = await sessions.create({ api_timeout: 60 });
  assert.equal(Date.parse(s.expiresAt) - Date.parse(s.startedAt), 60_000);
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
});

test('401: wrong API key → AuthenticationError', async () => {
  const wrong = new Browserbase({ apiKey: 'bb_live_not-a-real-key', baseURL: baseURL() });
  const err = await wrong.sessions.list().then(() => null, (e) => e);
  assert.ok(err instanceof Browserbase.AuthenticationError, `got ${err?.constructor?.name}: ${err?.message}`);
  assertErrorBody(err, 401);
  const err2 = await wrong.sessions.create({}).then((s) => { sessions.track(s.id); return null; }, (e) => e);
  assert.ok(err2 instanceof Browserbase.AuthenticationError, `create: got ${err2?.constructor?.name}`);

  // No key header at all.
  const res = await fetch(`${baseURL()}/v1/sessions`);
  assert.equal(res.status, 401, 'missing X-BB-API-Key → 401');
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
});

test('401: a projectId the key may not use', async () => {
  const limited = process.env.LIMITED_PROJECT_ID;
  assert.ok(limited, 'LIMITED_PROJECT_ID set');
  assert.notEqual(limited, await projectID());
  const err = await bb.sessions.create({ projectId: limited }).then((s) => { sessions.track(s.id); return null; }, (e) => e);
  assert.ok(err instanceof Browserbase.AuthenticationError, `got ${err?.constructor?.name ?? 'success'}: ${err?.message}`);
});

test('404: retrieve an unknown session → NotFoundError', async () => {
  const { c, calls } = countingClient(process.env.BROWSERBASE_API_KEY);
  const err = await c.sessions.retrieve(randomUUID()).then(() => null, (e) => e);
  assert.ok(err instanceof Browserbase.NotFoundError, `got ${err?.constructor?.name}: ${err?.message}`);
  assertErrorBody(err, 404);
  assert.equal(calls.length, 1, '404 is not retried');

  const err2 = await bb.sessions.update(randomUUID(), { status: 'REQUEST_RELEASE' }).then(() => null, (e) => e);
  assert.ok(err2 instanceof Browserbase.NotFoundError, `release unknown: got ${err2?.constructor?.name}`);
  const err3 = await bb.sessions.retrieve('not-a-uuid').then(() => null, (e) => e);
  assert.ok(err3 instanceof Browserbase.NotFoundError || err3 instanceof Browserbase.BadRequestError,
    `malformed id → 404 or 400, got ${err3?.constructor?.name}`);
});

test("404: another project's session is invisible", async () => {
  const other = new Browserbase({ apiKey: process.env.LIMITED_API_KEY, baseURL: baseURL() });
  const s = await other.sessions.create({});
  try {
    const err = await bb.sessions.retrieve(s.id).then(() => null, (e) => e);
    assert.ok(err instanceof Browserbase.NotFoundError, `got ${err?.constructor?.name ?? 'success'}`);
    const list = await bb.sessions.list();
    assert.ok(!list.some((x) => x.id === s.id), "list does not show another project's session");
  } finally {
    await other.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  }
});

test('429: concurrency limit → RateLimitError without retries (x-should-retry: false)', async () => {
  const key = process.env.LIMITED_API_KEY;
  assert.ok(key, 'LIMITED_API_KEY set');
  const { c, calls } = countingClient(key);
  const first = await c.sessions.create({});
  try {
    assert.equal(first.status, 'RUNNING');
    assert.equal(first.projectId, process.env.LIMITED_PROJECT_ID, 'session lands in the key project');
    const n = calls.length;
    const err = await c.sessions.create({}).then(
      async (s) => { await c.sessions.update(s.id, { status: 'REQUEST_RELEASE' }); return null; },
      (e) => e,
    );
    assert.ok(err instanceof Browserbase.RateLimitError, `got ${err?.constructor?.name ?? 'success'}: ${err?.message}`);
    assertErrorBody(err, 429);
    assert.equal(err.headers?.['x-should-retry'], 'false', 'x-should-retry: false on the concurrency 429');
    assert.equal(calls.length - n, 1, `exactly one request for the refused create, got ${JSON.stringify(calls.slice(n))}`);
  } finally {
    const rel = await c.sessions.update(first.id, { status: 'REQUEST_RELEASE' });
    assert.equal(rel.status, 'COMPLETED');
  }
  // The slot is free again right after the release (spec §5.6).
  const again = await c.sessions.create({});
  await c.sessions.update(again.id, { status: 'REQUEST_RELEASE' });
});

// ---- connect URL credentials ----

/** upgrade performs a raw websocket handshake; resolves with the HTTP status (101 = accepted). */
function upgrade(url) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    u.protocol = 'http:';
    const req = http.request(u, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.setTimeout(10000, () => req.destroy(new Error('upgrade timed out')));
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

function tamper(key) {
  const i = Math.floor(key.length / 2);
  const ch = key[i] === 'A' ? 'B' : 'A';
  return key.slice(0, i) + ch + key.slice(i + 1);
}

test('connectUrl: a tampered signingKey is refused, the real one accepted', async () => {
  const s = await sessions.create({ keepAlive: true });
  const u = new URL(s.connectUrl);
  const withKey = (k) => {
    const v = new URL(u);
    if (k === null) v.searchParams.delete('signingKey');
    else v.searchParams.set('signingKey', k);
    return v.toString();
  };

  assert.equal(await upgrade(s.connectUrl), 101, 'the real connectUrl upgrades');
  for (const [what, url] of [
    ['tampered key', withKey(tamper(s.signingKey))],
    ['truncated key', withKey(s.signingKey.slice(0, -4))],
    ['empty key', withKey('')],
    ['no key', withKey(null)],
    ['garbage key', withKey('x'.repeat(40))],
  ]) {
    const status = await upgrade(url);
    assert.notEqual(status, 101, `${what} must not upgrade`);
    assert.ok(status === 401 || status === 403 || status === 404 || status === 400, `${what}: 4xx, got ${status}`);
  }
  await assert.rejects(chromium.connectOverCDP(withKey(tamper(s.signingKey)), { timeout: 10000 }),
    `playwright with a tampered key (${redact(s.connectUrl)})`);

  // The session is unharmed and still connectable with the real key.
  assert.equal((await bb.sessions.retrieve(s.id)).status, 'RUNNING');
  const pw = await chromium.connectOverCDP(s.connectUrl);
  assert.ok(pw.contexts()[0].pages()[0]);
  await pw.close();
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
});

test("connectUrl: one session's signingKey does not open another session", async () => {
  const a = await sessions.create({ keepAlive: true });
  const b = await sessions.create({ keepAlive: true });
  assert.notEqual(a.signingKey, b.signingKey, 'signing keys are per session');
  await bb.sessions.update(a.id, { status: 'REQUEST_RELEASE' });
  assert.notEqual(await upgrade(a.connectUrl), 101, 'the released session key no longer upgrades');
  assert.equal(await upgrade(b.connectUrl), 101, 'the other session is still reachable');
  await bb.sessions.update(b.id, { status: 'REQUEST_RELEASE' });
});
