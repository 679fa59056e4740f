// What a person checks in the dashboard's session inspector (issue 19), shared by
// tests/inspector.test.mjs (a real session) and inspector-load.mjs (a seeded large one,
// run by TestInspectorBrowser in internal/server).
import assert from 'node:assert/strict';
import path from 'node:path';

// signIn signs a page in to the dashboard at base with key.
export async function signIn(page, base, key) {
  await page.goto(base + '/ui/');
  await page.fill('#apiKey', key);
  await page.click('#signin');
  await page.waitForURL((u) => u.pathname === '/ui/');
}

const rowCount = (page) => page.$eval('#list-spacer', (el) => Math.round(parseFloat(el.style.height || '0') / 22));

// checkInspector opens a session's inspector on a signed-in page and checks it; it
// returns the page's timings (ms since its script started, and since navigation).
export async function checkInspector(page, o) {
  const shot = (name) => page.screenshot({ path: path.join(o.shots, `${o.prefix}-${name}.png`) });
  const t0 = Date.now();
  const res = await page.goto(`${o.base}/ui/sessions/${o.sessionID}/inspector`);
  assert.equal(res.status(), 200);
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self';/);
  assert.doesNotMatch(csp, /unsafe-eval/);
  await page.waitForSelector('#inspector[data-first-rows]', { timeout: 60000 });
  const firstRows = Date.now() - t0;
  await page.waitForSelector('#inspector[data-logs-done]', { timeout: 120000 });
  const allLogs = Date.now() - t0;
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);

  // The replay: its iframe runs no script of the recorded pages, and it plays.
  await page.waitForSelector('#inspector[data-replay-ready]', { timeout: 60000 });
  const replayReady = Date.now() - t0;
  assert.equal(await page.getAttribute('#player iframe', 'sandbox'), 'allow-same-origin');
  await page.click('#play');
  await page.waitForFunction(() => Number(document.getElementById('player-time').dataset.ms) > 700, null, { timeout: 30000 });
  const a = Number(await page.getAttribute('#player-time', 'data-ms'));
  await page.waitForTimeout(700);
  const b = Number(await page.getAttribute('#player-time', 'data-ms'));
  assert.ok(b > a, `the playhead advances (${a} → ${b} ms)`);
  await shot('replay');

  // The command log and its filter.
  await page.click('[data-tab="commands"]');
  const all = await rowCount(page);
  assert.ok(all > 1, `commands listed (${all})`);
  await page.fill('#filter', o.commandFilter.toLowerCase());
  await page.waitForFunction((n) => Math.round(parseFloat(document.getElementById('list-spacer').style.height) / 22) < n, all, { timeout: 5000 });
  const some = await rowCount(page);
  assert.ok(some >= 1 && some < all, `the filter narrows the commands (${all} → ${some})`);
  for (const m of await page.locator('.vrow .c-cmd').allTextContents()) assert.match(m, new RegExp(o.commandFilter.replace('.', '\\.'), 'i'));
  await shot('commands-filtered');
  await page.fill('#filter', '');

  if (o.events) {
    await page.click('[data-tab="network"]');
    await page.fill('#filter', o.failingURL);
    const failed = page.locator('.vrow.fail .c-url', { hasText: o.failingURL }).first();
    await failed.waitFor({ timeout: 10000 });
    const colour = await page.$$eval('.vrow.fail .c-url', (els, u) => {
      const el = els.find((e) => e.textContent.includes(u));
      return el && getComputedStyle(el).color;
    }, o.failingURL);
    assert.equal(colour, 'rgb(197, 34, 31)', 'a failed request is red');
    await failed.click();
    await page.waitForSelector('#detail:not([hidden])');
    assert.match(await page.textContent('#detail'), o.failure);
    await shot('network-failed');
    await page.fill('#filter', '');
    await page.click('[data-tab="console"]');
    await page.locator('.vrow .c-text', { hasText: o.consoleText }).first().waitFor({ timeout: 10000 });
    // Untrusted text stays text: no element was made of it, no handler ran.
    assert.equal(await page.locator('#list img, #list b').count(), 0);
    assert.equal(await page.evaluate(() => window.xss), undefined);
    await shot('console');
  }
  if (o.marks) {
    // Failed requests are marked on the timeline under the seek bar.
    await page.waitForSelector('#marks .m-fail', { timeout: 10000 });
  }
  if (o.video) {
    // The video replay (hls.js over /ui/api/…/replays): shown, and it plays.
    await page.waitForSelector('#video[data-ready="1"]', { timeout: 120000 });
    await page.$eval('#video-player', (v) => v.play());
    await page.waitForFunction(() => document.getElementById('video-player').currentTime > 0.5, null, { timeout: 30000 });
    await page.$eval('#video', (el) => el.scrollIntoView());
    await shot('video');
  } else {
    // Without video replays the API answers 404 and the page shows no video.
    await page.waitForTimeout(300);
    assert.equal(await page.$eval('#video', (el) => el.hidden), true, 'no video section without replays');
  }
  const inPage = await page.$eval('#inspector', (el) => Object.fromEntries(
    ['firstRows', 'logsDone', 'replayReady', 'recordingDone', 'logs', 'events'].map((k) => [k, Number(el.dataset[k])])));
  return { fcp: fcp && Math.round(fcp), firstRows, allLogs, replayReady, inPage };
}

// measureInspector opens a session's inspector once more and returns how long (ms from
// the navigation's start) it took to its first rows, to the whole log list and to a
// replay that can play, and the recording's end.
export async function measureInspector(page, o) {
  const t0 = Date.now();
  await page.goto(`${o.base}/ui/sessions/${o.sessionID}/inspector`);
  const at = async (sel, timeout) => {
    await page.waitForSelector(sel, { timeout });
    return Date.now() - t0;
  };
  const firstRows = await at('#inspector[data-first-rows]', 60000);
  const replayReady = await at('#inspector[data-replay-ready]', 120000);
  const allLogs = await at('#inspector[data-logs-done]', 120000);
  const recordingDone = await at('#inspector[data-recording-done]', 300000);
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
  return { fcp: fcp && Math.round(fcp), firstRows, replayReady, allLogs, recordingDone };
}
