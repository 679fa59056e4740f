// Contexts through the official SDK (spec §2.8, §2.9, §5.5, §6.1–6.4) and a login that
// survives from one session to the next, seen through Playwright: cookies (session,
// persistent and HttpOnly), localStorage and IndexedDB.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import Browserbase from '@browserbasehq/sdk';
import { chromium } from 'playwright-core';
import { client, baseURL, apiKey, projectID, Sessions, UUID_RE, RFC3339_RE, median } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
const contexts = new Set();

// The site: /login?user=u sets the cookies, /whoami answers with the cookies it got.
// It listens on one port for the whole file, so that every session sees one origin.
let site;
before(async () => {
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/login') {
      const u = url.searchParams.get('user');
      res.setHeader('set-cookie', [`sess=${u}; Path=/`, `persist=${u}; Path=/; Max-Age=3600`, `auth=token-${u}; Path=/; Max-Age=3600; HttpOnly`]);
    }
    if (url.pathname === '/whoami') {
      const names = (req.headers.cookie ?? '').split(';').map((c) => c.trim()).filter(Boolean).sort();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(names.join(';'));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' }).end('<html><body>site</body></html>');
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  site = { url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); }) };
});
after(async () => {
  await sessions.releaseAll();
  for (const id of contexts) await bb.contexts.delete(id).catch(() => {});
  await site?.close();
});

async function newContext(params) {
  const c = await bb.contexts.create(params);
  contexts.add(c.id);
  return c;
}

function assertCreateResponse(c) {
  assert.match(c.id, UUID_RE);
  assert.equal(c.cipherAlgorithm, 'AES-256-CBC');
  assert.equal(c.initializationVectorSize, 16);
  assert.equal(typeof c.uploadUrl, 'string');
  assert.ok(c.uploadUrl.length > 0, 'uploadUrl is not empty');
  // A real RSA public key: Node can parse it and encrypt to it.
  const key = crypto.createPublicKey(c.publicKey);
  assert.equal(key.asymmetricKeyType, 'rsa');
  assert.ok(crypto.publicEncrypt(key, crypto.randomBytes(32)).length > 0);
}

test('contexts.create / retrieve / update / delete', async () => {
  const pid = await projectID();
  const c = await newContext();
  assertCreateResponse(c);
  const got = await bb.contexts.retrieve(c.id);
  assert.deepEqual(Object.keys(got).sort(), ['createdAt', 'id', 'projectId', 'updatedAt']);
  assert.equal(got.id, c.id);
  assert.equal(got.projectId, pid);
  assert.match(got.createdAt, RFC3339_RE);
  assert.match(got.updatedAt, RFC3339_RE);

  // The deprecated update: PUT with an empty body; a fresh key pair.
  const up = await bb.contexts.update(c.id);
  assertCreateResponse(up);
  assert.equal(up.id, c.id);
  assert.notEqual(up.publicKey, c.publicKey, 'PUT returns a fresh public key');

  const named = await newContext({ projectId: pid, name: '  Shop login  ' });
  assert.equal((await bb.contexts.retrieve(named.id)).name, 'Shop login', 'the name is trimmed');

  assert.equal(await bb.contexts.delete(c.id), null, 'delete → 204, the SDK returns null');
  contexts.delete(c.id);
  const err = await bb.contexts.retrieve(c.id).then(() => null, (e) => e);
  assert.ok(err instanceof Browserbase.NotFoundError, `retrieve after delete: ${err?.constructor?.name}`);
});

test('contexts.create: a duplicate name is a 409 that the SDK does not retry', async () => {
  const name = `dup-${crypto.randomUUID()}`;
  await newContext({ name });
  const calls = [];
  const c = new Browserbase({
    apiKey: apiKey(),
    baseURL: baseURL(),
    fetch: async (url, init) => {
      const res = await globalThis.fetch(url, init);
      calls.push(res.status);
      return res;
    },
  });
  for (const dup of [name, name.toUpperCase(), `  ${name}\t`]) {
    calls.length = 0;
    const err = await c.contexts.create({ name: dup }).then((x) => { contexts.add(x.id); return null; }, (e) => e);
    assert.ok(err instanceof Browserbase.ConflictError, `${JSON.stringify(dup)}: got ${err?.constructor?.name}: ${err?.message}`);
    assert.deepEqual(calls, [409], 'one request: x-should-retry: false stops the SDK retrying the 409');
  }
});

test('sessions.create with an unknown context is a 404', async () => {
  const err = await sessions.create({ browserSettings: { context: { id: crypto.randomUUID(), persist: true } } }).then(() => null, (e) => e);
  assert.ok(err instanceof Browserbase.NotFoundError, `got ${err?.constructor?.name}: ${err?.message}`);
});

const setState = (v) => new Promise((resolve, reject) => {
  localStorage.setItem('user', v);
  const r = indexedDB.open('app', 1);
  r.onupgradeneeded = () => r.result.createObjectStore('kv');
  r.onerror = () => reject(r.error);
  r.onsuccess = () => {
    const tx = r.result.transaction('kv', 'readwrite');
    tx.objectStore('kv').put(v, 'user');
    tx.oncomplete = () => { r.result.close(); resolve('ok'); };
    tx.onerror = () => reject(tx.error);
  };
});

const getState = () => new Promise((resolve, reject) => {
  const r = indexedDB.open('app', 1);
  r.onupgradeneeded = () => r.result.createObjectStore('kv');
  r.onerror = () => reject(r.error);
  r.onsuccess = () => {
    const g = r.result.transaction('kv').objectStore('kv').get('user');
    g.onsuccess = () => { r.result.close(); resolve(`ls=${localStorage.getItem('user')} idb=${g.result}`); };
    g.onerror = () => reject(g.error);
  };
});

/** session runs fn(page, browserContext) in a new session with the context, then releases it. */
async function session(contextId, persist, fn) {
  const t0 = performance.now();
  const s = await sessions.create({ browserSettings: { context: { id: contextId, persist } } });
  const started = performance.now() - t0;
  assert.equal(s.contextId, contextId, 'the session shows its contextId');
  const browser = await chromium.connectOverCDP(s.connectUrl);
  try {
    const ctx = browser.contexts()[0];
    await fn(ctx.pages()[0], ctx);
  } finally {
    await browser.close(); // disconnects
    await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  }
  return started;
}

async function whoami(page) {
  await page.goto(site.url + '/whoami');
  const cookies = await page.textContent('body');
  await page.goto(site.url + '/');
  return `${cookies} ${await page.evaluate(getState)}`;
}

const loggedInAs = (u) => `auth=token-${u};persist=${u};sess=${u} ls=${u} idb=${u}`;

test('a login survives from one session to the next (persist), and persist:false changes nothing', async (t) => {
  const c = await newContext();
  const starts = [];
  starts.push(await session(c.id, true, async (page) => {
    assert.equal(await whoami(page), ' ls=null idb=undefined', 'a new context starts empty');
    await page.goto(site.url + '/login?user=alice');
    assert.equal(await page.evaluate(setState, 'alice'), 'ok');
  }));
  // The next create waits for the write-back of the session just released.
  starts.push(await session(c.id, false, async (page, ctx) => {
    assert.equal(await whoami(page), loggedInAs('alice'), 'still logged in');
    const cookies = Object.fromEntries((await ctx.cookies(site.url)).map((k) => [k.name, k]));
    assert.equal(cookies.sess?.expires, -1, 'the session cookie came back as a session cookie');
    assert.equal(cookies.auth?.httpOnly, true, 'the HttpOnly cookie came back');
    await page.goto(site.url + '/login?user=mallory');
    await page.evaluate(setState, 'mallory');
  }));
  starts.push(await session(c.id, false, async (page) => {
    assert.equal(await whoami(page), loggedInAs('alice'), 'persist:false left the context unchanged');
  }));
  const plain = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const s = await sessions.create();
    plain.push(performance.now() - t0);
    await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  }
  t.diagnostic(`session create: median ${median(plain).toFixed(0)} ms without a context, ` +
    `${median(starts.slice(1)).toFixed(0)} ms with the saved login (first, empty: ${starts[0].toFixed(0)} ms)`);
});
