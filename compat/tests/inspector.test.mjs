// The dashboard's session inspector (issue 19), driven as a person uses it: a real
// session (Playwright over connectUrl) loads a page with a failing image and a
// console.error and ends; a separate Chromium (playwright-core) signs in to the
// dashboard, opens the session's inspector, plays the replay, and reads the lists.
// Screenshots go to test-artifacts/inspector-*.png.
//
// The browser's own events (Network.*, Runtime.consoleAPICalled, …) are in the logs:
// the failing image is red with its 404 and the console error is listed. The same checks
// on events seeded through the store run in Go: TestInspectorBrowser (internal/server).
// The video replay (hls.js) is checked too (BROWSERD_INSPECTOR_VIDEO=0: none shown).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { client, Sessions, waitForStatus, chromePath, baseURL, apiKey } from './helpers.mjs';
import { signIn, checkInspector } from '../inspector.mjs';

const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-artifacts');
fs.mkdirSync(ARTIFACTS, { recursive: true });
const EVENTS = true;
// The video replays (GET /v1/sessions/{id}/replays, internal/replays) are on by default
// (--video), so the inspector must show and play the session's video; against a server
// run with --video=false, BROWSERD_INSPECTOR_VIDEO=0 checks that it shows none.
const VIDEO = process.env.BROWSERD_INSPECTOR_VIDEO !== '0';
const TEST_TIMEOUT = 240_000;

const bb = client();
const sessions = new Sessions(bb);
let site, viewer, deadPort;

before(async () => {
  // A port nothing listens on: the page's image from it fails in browserd's session proxy.
  const probe = http.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  deadPort = probe.address().port;
  await new Promise((r) => probe.close(r));
  const srv = http.createServer((req, res) => {
    if (req.url === '/missing.png') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such image');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html><html><head><title>inspector compat</title></head>
<body style="font:20px sans-serif"><h1 id="title">Inspector compat page</h1>
<img id="broken" src="/missing.png" alt="missing"><img id="down" src="http://127.0.0.1:${deadPort}/down.png" alt="down"><p id="counter">0</p>
<script>
console.error('inspector-compat console error <b>not bold</b>');
let n = 0; setInterval(() => { document.getElementById('counter').textContent = String(++n); }, 200);
</script></body></html>`);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  site = { url: `http://127.0.0.1:${srv.address().port}/`, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }) };
  viewer = await chromium.launch({ executablePath: chromePath(), args: ['--no-sandbox'] });
});

after(async () => {
  await viewer?.close();
  await site?.close();
  await sessions.releaseAll();
});

test('inspector: replay plays, lists follow, the filter narrows the commands', { timeout: TEST_TIMEOUT }, async () => {
  const s = await sessions.create({});
  const agent = await chromium.connectOverCDP(s.connectUrl);
  const page = agent.contexts()[0].pages()[0] || (await agent.contexts()[0].newPage());
  await page.goto(site.url);
  await page.waitForTimeout(3000); // the counter mutates the page: the recording has something to play
  for (let i = 0; i < 3; i++) await page.evaluate(`document.title = 'step ${i}'`);
  await agent.close(); // the last client leaves: the session ends
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE', projectId: process.env.BROWSERBASE_PROJECT_ID }).catch(() => {});
  await waitForStatus(bb, s.id, 'COMPLETED', 30000);

  const d = await viewer.newPage({ viewport: { width: 1600, height: 1000 } });
  await signIn(d, baseURL(), apiKey());
  const r = await checkInspector(d, {
    base: baseURL(), sessionID: s.id, events: EVENTS, video: VIDEO, failingURL: '/missing.png', failure: /404/,
    consoleText: 'inspector-compat console error', commandFilter: 'Page.navigate', shots: ARTIFACTS, prefix: 'inspector',
  });
  console.log('inspector timings (ms):', JSON.stringify(r));

  // A request the session proxy could not deliver says why: a 502 whose reason the
  // proxy names (not an opaque net::ERR_BLOCKED_BY_ORB).
  await d.click('[data-tab="network"]');
  await d.fill('#filter', 'down.png');
  const down = d.locator('.vrow.fail .c-url', { hasText: 'down.png' }).first();
  await down.waitFor({ timeout: 10000 });
  await down.click();
  await d.waitForSelector('#detail:not([hidden])');
  const detail = await d.textContent('#detail');
  assert.match(detail, /502/);
  assert.match(detail, /Failure.*cannot reach 127\.0\.0\.1.*connection refused/);
  await d.screenshot({ path: path.join(ARTIFACTS, 'inspector-proxy-failure.png') });
  await d.fill('#filter', '');

  // Another project's key sees no such session.
  if (process.env.LIMITED_API_KEY) {
    const o = await viewer.newPage();
    await signIn(o, baseURL(), process.env.LIMITED_API_KEY);
    const res = await o.goto(`${baseURL()}/ui/sessions/${s.id}/inspector`);
    assert.equal(res.status(), 404);
    await o.close();
  }
  await d.close();
});

test('project page: charts drawn', { timeout: TEST_TIMEOUT }, async () => {
  const d = await viewer.newPage({ viewport: { width: 1400, height: 1000 } });
  await signIn(d, baseURL(), apiKey());
  await d.goto(`${baseURL()}/ui/project`);
  await d.waitForSelector('#project[data-loaded="1"]', { timeout: 20000 });
  assert.equal(await d.locator('.uplot').count(), 4, 'four charts');
  assert.match(await d.locator('#project-status').textContent(), /sessions in 30 days · concurrency limit \d+/);
  await d.screenshot({ path: path.join(ARTIFACTS, 'inspector-project-charts.png'), fullPage: true });
  await d.close();
});
