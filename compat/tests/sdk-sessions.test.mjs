// The session REST endpoints through the official SDK (spec §3.1–3.4, §5.1, §5.4, §5.8).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { client, projectID, Sessions, assertSessionShape, assertConnectable, UUID_RE } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
after(() => sessions.releaseAll());

test('create with {} uses the key project and the defaults', async () => {
  const pid = await projectID();
  const before = Date.now();
  const s = await sessions.create({});
  assertSessionShape(s, { projectId: pid });
  assertConnectable(s);
  assert.equal(s.status, 'RUNNING');
  assert.equal(s.keepAlive, false);
  assert.equal(s.region, 'us-west-2', 'default region (spec §2.1)');
  assert.equal(s.endedAt ?? undefined, undefined, 'no endedAt while running');
  assert.equal(s.contextId ?? undefined, undefined, 'no contextId without a context');
  const started = Date.parse(s.startedAt);
  assert.ok(started >= before - 5000 && started <= Date.now() + 5000, `startedAt ${s.startedAt} is now`);
  const timeout = (Date.parse(s.expiresAt) - started) / 1000;
  assert.ok(timeout >= 60 && timeout <= 21600, `default timeout ${timeout}s in 60..21600`);

  const [p] = (await bb.projects.list()).filter((p) => p.id === pid);
  assert.ok(p, 'key project is listed by GET /v1/projects');
  assert.ok(Math.abs(timeout - p.defaultTimeout) <= 1, `expiresAt - startedAt (${timeout}s) = project defaultTimeout (${p.defaultTimeout}s)`);

  const released = await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  assert.equal(released.status, 'COMPLETED');
});

test('full create → retrieve → list → q → release lifecycle', async () => {
  const pid = await projectID();
  const userMetadata = { env: 'staging', order: { status: 'shipped' } };
  const s = await sessions.create({
    projectId: pid,
    keepAlive: true,
    api_timeout: 120, // SDK 2.21 name of the body field `timeout`
    region: 'eu-central-1',
    userMetadata,
    browserSettings: {
      viewport: { width: 1024, height: 700 },
      blockAds: true,
      solveCaptchas: false,
      fingerprint: { locales: ['en-US'] },
      unknownFutureField: 1,
    },
  });

  // -- create response (spec §2.3) --
  assertSessionShape(s, { projectId: pid });
  assertConnectable(s);
  assert.match(s.id, UUID_RE);
  assert.equal(s.status, 'RUNNING');
  assert.equal(s.region, 'eu-central-1');
  assert.equal(s.keepAlive, true);
  assert.equal(s.proxyBytes, 0);
  assert.deepEqual(s.userMetadata, userMetadata, 'userMetadata echoed');
  const started = Date.parse(s.startedAt);
  assert.equal(Date.parse(s.expiresAt) - started, 120_000, `expiresAt - startedAt = timeout (${s.startedAt} → ${s.expiresAt})`);
  assert.ok(Date.parse(s.createdAt) <= started + 1000, 'createdAt ≈/≤ startedAt');
  assert.ok(Date.parse(s.updatedAt) >= Date.parse(s.createdAt), 'updatedAt ≥ createdAt');

  // -- retrieve (spec §3.3): connection fields present while RUNNING --
  const got = await bb.sessions.retrieve(s.id);
  assertSessionShape(got, { projectId: pid });
  assertConnectable(got);
  assert.equal(got.id, s.id);
  assert.equal(got.status, 'RUNNING');
  assert.equal(got.connectUrl, s.connectUrl, 'same connectUrl as create');
  assert.equal(got.signingKey, s.signingKey);
  assert.equal(got.expiresAt, s.expiresAt);
  assert.equal(got.startedAt, s.startedAt);
  assert.equal(got.region, 'eu-central-1');
  assert.equal(got.keepAlive, true);
  assert.deepEqual(got.userMetadata, userMetadata);

  // -- list (spec §3.2): plain array of Session, no connection fields --
  const all = await bb.sessions.list();
  assert.ok(Array.isArray(all), 'list returns an array');
  const item = all.find((x) => x.id === s.id);
  assert.ok(item, 'list contains the new session');
  assertSessionShape(item, { projectId: pid });
  assert.equal(item.status, 'RUNNING');

  const byQ = await bb.sessions.list({ q: "user_metadata['order']['status']:'shipped'" });
  assert.ok(Array.isArray(byQ));
  assert.ok(byQ.some((x) => x.id === s.id), 'q on a nested key finds it');
  for (const x of byQ) assert.equal(x.userMetadata?.order?.status, 'shipped', `q result ${x.id} matches`);
  const byQTop = await bb.sessions.list({ q: "user_metadata['env']:'staging'" });
  assert.ok(byQTop.some((x) => x.id === s.id), 'q on a top-level key finds it');
  const none = await bb.sessions.list({ q: "user_metadata['order']['status']:'lost-in-transit'" });
  assert.deepEqual(none, [], 'non-matching q gives []');

  const running = await bb.sessions.list({ status: 'RUNNING' });
  assert.ok(running.some((x) => x.id === s.id), 'status=RUNNING contains it');
  for (const x of running) assert.equal(x.status, 'RUNNING', 'status filter is exact');

  // -- release (spec §3.4, §5.4) --
  const rel = await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE', projectId: pid });
  assertSessionShape(rel, { projectId: pid });
  assert.equal(rel.id, s.id);
  assert.equal(rel.status, 'COMPLETED');
  assert.equal(typeof rel.endedAt, 'string', 'endedAt set on release');
  assert.ok(Date.parse(rel.endedAt) >= started, 'endedAt ≥ startedAt');

  const again = await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE', projectId: pid });
  assert.equal(again.status, 'COMPLETED', 'second release is an idempotent 200');
  assert.equal(again.endedAt, rel.endedAt, 'second release keeps endedAt');

  const ended = await bb.sessions.retrieve(s.id);
  assert.equal(ended.status, 'COMPLETED');
  assert.equal(ended.endedAt, rel.endedAt);
  assert.equal(ended.connectUrl ?? undefined, undefined, 'no connectUrl once ended');

  const completed = await bb.sessions.list({ status: 'COMPLETED' });
  assert.ok(completed.some((x) => x.id === s.id), 'status=COMPLETED contains it');
  const stillRunning = await bb.sessions.list({ status: 'RUNNING' });
  assert.ok(!stillRunning.some((x) => x.id === s.id), 'status=RUNNING no longer contains it');
});

test('the legacy body name `timeout` (older SDKs, other languages) is accepted too', async () => {
  // Older clients put `timeout` in the body themselves. With another key present the SDK
  // sends the object as the body ({timeout: undefined, ...params}).
  const s = await sessions.create({ projectId: await projectID(), timeout: 90 });
  assert.equal(Date.parse(s.expiresAt) - Date.parse(s.startedAt), 90_000);
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
});

test('debug live URLs of a running session (spec §3.5)', async () => {
  const s = await sessions.create({});
  const live = await bb.sessions.debug(s.id);
  for (const f of ['debuggerFullscreenUrl', 'debuggerUrl', 'wsUrl']) {
    assert.equal(typeof live[f], 'string', `${f} present`);
  }
  assert.ok(Array.isArray(live.pages), 'pages is an array');
  assert.ok(live.pages.length >= 1, 'the default page is listed');
  for (const p of live.pages) {
    for (const f of ['id', 'url', 'title', 'faviconUrl', 'debuggerUrl', 'debuggerFullscreenUrl']) {
      assert.equal(typeof p[f], 'string', `page.${f} is a string`);
    }
  }
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
});
