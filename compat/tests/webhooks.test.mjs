// Webhooks through the official SDK 2.21 (resources/webhooks: create, list, retrieve,
// update, rotateSecret, delete) and a real delivery: a session created and released
// through the SDK reaches a Node receiver as a signed sessions.ended event, verified the
// way docs/COMPATIBILITY.md ("Webhooks") tells receivers to. The server runs with
// --webhook-allow-http and --webhook-allow-private-networks (run.sh): the receiver is on
// loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import Browserbase from '@browserbasehq/sdk';
import { client, baseURL, apiKey, projectID, Sessions, UUID_RE, RFC3339_RE } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
const hooks = new Set();

// verify is the snippet of docs/COMPATIBILITY.md: Standard Webhooks, HMAC-SHA256 with
// the base64 key after whsec_ over `${id}.${timestamp}.${body}`, any of the
// space-separated v1 signatures, and a 5-minute replay window.
function verify(secret, headers, body) {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = (headers['webhook-signature'] ?? '').split(' ');
  if (!id || !ts || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const want = crypto.createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest();
  return sigs.some((s) => {
    const [v, sig] = s.split(',');
    const got = Buffer.from(sig ?? '', 'base64');
    return v === 'v1' && got.length === want.length && crypto.timingSafeEqual(got, want);
  });
}

// The receiver answers 204 to deliveries that verify with `secret`, 401 otherwise.
let receiver;
before(async () => {
  const events = [];
  const waiters = [];
  const state = { secret: '' };
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (!verify(state.secret, req.headers, body)) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(204).end();
      events.push({ headers: req.headers, event: JSON.parse(body) });
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  receiver = {
    url: `http://127.0.0.1:${srv.address().port}/hooks`,
    state,
    events,
    async next(pred, ms = 60_000) {
      const end = Date.now() + ms;
      for (;;) {
        const i = events.findIndex(pred);
        if (i >= 0) return events.splice(i, 1)[0];
        if (Date.now() > end) throw new Error('no matching delivery');
        await new Promise((r) => { waiters.push(r); setTimeout(r, 1000); });
      }
    },
    close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); }),
  };
});
after(async () => {
  await sessions.releaseAll();
  for (const id of hooks) await bb.webhooks.delete(id).catch(() => {});
  await receiver?.close();
});

async function assertWebhook(w, endpoint, eventTypes) {
  assert.match(w.id, UUID_RE);
  assert.equal(w.endpoint, endpoint);
  assert.deepEqual(w.eventTypes, eventTypes);
  assert.equal(w.projectId, await projectID());
  assert.match(w.createdAt, RFC3339_RE);
  assert.match(w.updatedAt, RFC3339_RE);
}

test('webhooks: create, list, retrieve, update, rotateSecret and delete through the SDK', async () => {
  const endpoint = `${receiver.url}?crud=1`;
  const created = await bb.webhooks.create({ endpoint, eventTypes: ['sessions.created', 'sessions.ended'] });
  hooks.add(created.id);
  await assertWebhook(created, endpoint, ['sessions.created', 'sessions.ended']);
  assert.match(created.secret, /^whsec_[A-Za-z0-9+/]+=*$/);

  const got = await bb.webhooks.retrieve(created.id);
  await assertWebhook(got, endpoint, ['sessions.created', 'sessions.ended']);
  assert.equal(got.secret, undefined, 'the secret is shown only on create and rotate');

  const list = await bb.webhooks.list({ limit: 100 });
  assert.ok(list.data.some((w) => w.id === created.id && w.secret === undefined));
  assert.equal(list.limit, 100);
  assert.ok(list.nextCursor === null || typeof list.nextCursor === 'string');

  const updated = await bb.webhooks.update(created.id, { eventTypes: ['sessions.running'] });
  await assertWebhook(updated, endpoint, ['sessions.running']);
  const moved = await bb.webhooks.update(created.id, { endpoint: `${receiver.url}?crud=2` });
  await assertWebhook(moved, `${receiver.url}?crud=2`, ['sessions.running']);

  const rotated = await bb.webhooks.rotateSecret(created.id);
  assert.match(rotated.secret, /^whsec_/);
  assert.notEqual(rotated.secret, created.secret);
  const revoked = await bb.webhooks.rotateSecret(created.id, { revokeImmediately: true });
  assert.notEqual(revoked.secret, rotated.secret);

  // Errors in the API's shape: a duplicate endpoint, an unknown event type, plain http
  // being allowed only by the operator's flag is exercised by the Go tests.
  await assert.rejects(bb.webhooks.create({ endpoint: `${receiver.url}?crud=2`, eventTypes: ['sessions.ended'] }),
    (e) => e instanceof Browserbase.ConflictError);
  await assert.rejects(bb.webhooks.create({ endpoint: `${receiver.url}?x=3`, eventTypes: ['functions.builds.running'] }),
    (e) => e instanceof Browserbase.BadRequestError && /Functions/.test(e.message));

  await bb.webhooks.delete(created.id);
  hooks.delete(created.id);
  await assert.rejects(bb.webhooks.retrieve(created.id), (e) => e instanceof Browserbase.NotFoundError);
});

test('webhooks: list pages with nextCursor, newest first', async () => {
  const made = [];
  for (let i = 0; i < 3; i++) {
    const w = await bb.webhooks.create({ endpoint: `${receiver.url}?page=${i}`, eventTypes: ['sessions.ended'] });
    hooks.add(w.id);
    made.push(w.id);
  }
  const seen = [];
  let cursor;
  for (let i = 0; i < 20; i++) {
    const page = await bb.webhooks.list(cursor ? { limit: 1, cursor } : { limit: 1 });
    assert.ok(page.data.length <= 1);
    seen.push(...page.data.map((w) => w.id));
    if (page.nextCursor === null) break;
    cursor = page.nextCursor;
  }
  const mine = seen.filter((id) => made.includes(id));
  assert.deepEqual(mine, [...made].reverse());
  for (const id of made) {
    await bb.webhooks.delete(id);
    hooks.delete(id);
  }
});

test('webhooks: a released session is delivered as a signed sessions.ended event', async () => {
  const hook = await bb.webhooks.create({ endpoint: `${receiver.url}?ended=1`, eventTypes: ['sessions.ended'] });
  hooks.add(hook.id);
  receiver.state.secret = hook.secret;
  const s = await sessions.create({ projectId: await projectID() });
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  const got = await receiver.next((e) => e.event.data?.sessionId === s.id);
  assert.equal(got.event.type, 'sessions.ended');
  assert.equal(got.event.projectId, await projectID());
  assert.equal(got.event.data.status, 'COMPLETED');
  assert.equal(got.event.data.reason, 'released');
  assert.equal(got.event.data.session.id, s.id);
  assert.equal(got.headers['webhook-id'], got.event.id);

  // The delivery and its attempt, through browserd's extension of the API. The sender
  // records the attempt once the receiver's answer is in, which may be after the receiver
  // saw the request (in a cluster, on another node): wait for it a little.
  let d;
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${baseURL()}/v1/webhooks/${hook.id}/deliveries`, { headers: { 'X-BB-API-Key': apiKey() } });
    assert.equal(res.status, 200);
    const page = await res.json();
    d = page.data.find((x) => x.eventId === got.event.id);
    if (d && d.attempts.length >= 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(d, 'the delivery is listed');
  assert.equal(d.eventType, 'sessions.ended');
  assert.deepEqual(d.event, got.event);
  assert.ok(d.attempts.length >= 1, 'its attempt is recorded within 5 s');
});
