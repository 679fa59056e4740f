// Extensions through the official SDK (spec §2.10, §5.9, §6.5–6.7) and an uploaded MV3
// extension running in a session seen through Playwright: its content script marks the
// page and its service worker runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Browserbase, { toFile } from '@browserbasehq/sdk';
import { chromium } from 'playwright-core';
import { client, projectID, Sessions, startPageServer, waitFor, UUID_RE, RFC3339_RE, median } from './helpers.mjs';
import { makeZip } from './zip.mjs';

const bb = client();
const sessions = new Sessions(bb);
let site;
before(async () => {
  site = await startPageServer();
});
after(async () => {
  await sessions.releaseAll();
  await site?.close();
});

const markerExtension = {
  'manifest.json': JSON.stringify({
    manifest_version: 3,
    name: 'browserd compat marker',
    version: '1.0',
    background: { service_worker: 'bg.js' },
    content_scripts: [{ matches: ['<all_urls>'], js: ['js/cs.js'], run_at: 'document_start' }],
  }),
  'bg.js': 'chrome.runtime.onInstalled.addListener(() => {});',
  'js/cs.js': 'document.documentElement.dataset.browserdMarker = "content-script";',
};

function assertExtension(e, fileName, projectId) {
  assert.match(e.id, UUID_RE);
  assert.match(e.createdAt, RFC3339_RE);
  assert.match(e.updatedAt, RFC3339_RE);
  assert.equal(e.fileName, fileName);
  assert.equal(e.projectId, projectId);
  assert.deepEqual(Object.keys(e).sort(), ['createdAt', 'fileName', 'id', 'projectId', 'updatedAt']);
}

test('extensions.create / retrieve / delete', async () => {
  const pid = await projectID();
  const ext = await bb.extensions.create({ file: await toFile(makeZip(markerExtension), 'stagehand-extension.zip') });
  assertExtension(ext, 'stagehand-extension.zip', pid);
  assert.deepEqual(await bb.extensions.retrieve(ext.id), ext);
  assert.equal(await bb.extensions.delete(ext.id), null, 'delete → 204, the SDK returns null');
  const err = await bb.extensions.retrieve(ext.id).then(() => null, (e) => e);
  assert.ok(err instanceof Browserbase.NotFoundError, `retrieve after delete: ${err?.constructor?.name}`);
  const err2 = await bb.extensions.delete(ext.id).then(() => null, (e) => e);
  assert.ok(err2 instanceof Browserbase.NotFoundError, `second delete: ${err2?.constructor?.name}`);
});

test('extensions.create: bad zips are 400 (BadRequestError, which the SDK does not retry)', async () => {
  const bad = {
    'not a zip': Buffer.from('hello, not a zip'),
    'no manifest': makeZip({ 'js/cs.js': '1' }),
    'manifest in a folder': makeZip({ 'ext/manifest.json': markerExtension['manifest.json'] }),
    'zip slip': makeZip({ 'manifest.json': markerExtension['manifest.json'], '../../evil.js': '1' }),
  };
  for (const [name, buf] of Object.entries(bad)) {
    const err = await bb.extensions.create({ file: await toFile(buf, 'x.zip') }).then(() => null, (e) => e);
    assert.ok(err instanceof Browserbase.BadRequestError, `${name}: got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.status, 400);
    assert.equal(typeof err.error?.message, 'string');
  }
});

test('a session with the extension runs it (content script and service worker), seen through Playwright', async () => {
  const ext = await bb.extensions.create({ file: await toFile(makeZip(markerExtension), 'marker.zip') });
  for (const params of [{ extensionId: ext.id }, { browserSettings: { extensionId: ext.id } }]) {
    const s = await sessions.create(params);
    const browser = await chromium.connectOverCDP(s.connectUrl);
    try {
      const page = browser.contexts()[0].pages()[0];
      await page.goto(site.url + 'ext');
      assert.equal(await page.textContent('#marker'), site.marker);
      const mark = await page.evaluate(() => document.documentElement.dataset.browserdMarker ?? null);
      assert.equal(mark, 'content-script', `the content script ran (${JSON.stringify(params)})`);
      const cdp = await browser.newBrowserCDPSession();
      const sw = await waitFor(async () => {
        const { targetInfos } = await cdp.send('Target.getTargets');
        return targetInfos.find((t) => t.type === 'service_worker' && t.url.startsWith('chrome-extension://') && t.url.endsWith('/bg.js'));
      }, { timeout: 15000, what: 'the extension service worker' });
      assert.ok(sw);
    } finally {
      await browser.close();
      await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
    }
  }
  await bb.extensions.delete(ext.id);
  const err = await sessions.create({ extensionId: ext.id }).then(() => null, (e) => e);
  assert.ok(err instanceof Browserbase.NotFoundError, `a deleted extension at create: ${err?.constructor?.name}`);
});

test('Stagehand flow: upload, session, release, delete — and how long upload and delete take', async (t) => {
  const up = [];
  const del = [];
  for (let i = 0; i < 5; i++) {
    let t0 = performance.now();
    const ext = await bb.extensions.create({ file: await toFile(makeZip(markerExtension), 'stagehand-extension.zip') });
    up.push(performance.now() - t0);
    if (i === 0) {
      const s = await sessions.create({ extensionId: ext.id, userMetadata: { stagehand: 'true' } });
      await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
    }
    t0 = performance.now();
    await bb.extensions.delete(ext.id);
    del.push(performance.now() - t0);
  }
  t.diagnostic(`extension upload median ${median(up).toFixed(1)} ms, delete median ${median(del).toFixed(1)} ms (5 runs)`);
});
