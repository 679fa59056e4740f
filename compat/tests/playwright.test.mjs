// Playwright over CDP (spec §4.1, §5.3, §8): default context/page, navigation, screenshot,
// viewport, and "last client disconnect ends a session without keepAlive".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { client, Sessions, startPageServer, waitForStatus, median, redact } from './helpers.mjs';

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

function pngSize(buf) {
  // PNG signature, then the IHDR chunk: width and height as big-endian uint32 at 16 and 20.
  assert.ok(buf.length > 1000, `screenshot has ${buf.length} bytes`);
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(buf.subarray(12, 16).toString('latin1'), 'IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

test('connectOverCDP: default page, goto, screenshot, viewport, disconnect ends the session', async () => {
  const s = await sessions.create({ browserSettings: { viewport: { width: 1024, height: 700 } } });
  const browser = await chromium.connectOverCDP(s.connectUrl);
  let closed = false;
  try {
    const contexts = browser.contexts();
    assert.ok(contexts.length >= 1, 'a default context exists on connect (spec §4.1)');
    const ctx = contexts[0];
    const pages = ctx.pages();
    assert.ok(pages.length >= 1, 'the default context has an open page on connect (spec §4.1)');
    const page = pages[0];

    const resp = await page.goto(site.url + 'hello', { waitUntil: 'load' });
    assert.equal(resp?.status(), 200);
    assert.equal(await page.textContent('#marker'), site.marker, 'page content read back');
    assert.equal(await page.title(), 'compat /hello');
    assert.equal(page.url(), site.url + 'hello');

    const vp = await page.evaluate(() => ({ w: window.innerWidth, h: window.innerHeight }));
    assert.deepEqual(vp, { w: 1024, h: 700 }, 'browserSettings.viewport is the page viewport');

    const png = await page.screenshot();
    const size = pngSize(png);
    assert.ok(size.width >= 200 && size.height >= 200, `screenshot ${size.width}x${size.height}`);
    assert.ok(Math.abs(size.width - 1024) <= 1 && Math.abs(size.height - 700) <= 1,
      `screenshot is the viewport size, got ${size.width}x${size.height}`);

    const fullPng = await page.screenshot({ fullPage: true });
    pngSize(fullPng);

    // A second page in the default context works as well.
    const p2 = await ctx.newPage();
    await p2.goto(site.url + 'second');
    assert.equal(await p2.textContent('#path'), '/second');
    await p2.close();

    const still = await bb.sessions.retrieve(s.id);
    assert.equal(still.status, 'RUNNING', 'running while connected');
  } finally {
    await browser.close(); // over CDP this only disconnects
    closed = true;
  }
  assert.ok(closed);
  // Without keepAlive the last client disconnect ends the session after a short grace.
  const ended = await waitForStatus(bb, s.id, 'COMPLETED', 7000);
  assert.equal(typeof ended.endedAt, 'string', 'endedAt set');
  assert.equal(ended.connectUrl ?? undefined, undefined, 'no connectUrl once ended');
});

test('a page context created by the client (browser.newContext) works over CDP', async () => {
  const s = await sessions.create({});
  const browser = await chromium.connectOverCDP(s.connectUrl);
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(site.url + 'isolated');
    assert.equal(await page.textContent('#marker'), site.marker);
    await ctx.close();
  } finally {
    await browser.close();
  }
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
});

test('lifecycle timing: create → connect → goto → release (median of 5)', async () => {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const s = await sessions.create({});
    const browser = await chromium.connectOverCDP(s.connectUrl);
    try {
      const page = browser.contexts()[0].pages()[0];
      await page.goto(site.url + `iter-${i}`);
      assert.equal(await page.textContent('#path'), `/iter-${i}`);
      const rel = await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
      assert.equal(rel.status, 'COMPLETED');
      times.push(performance.now() - t0);
    } finally {
      await browser.close().catch(() => {}); // the release already closed the connection
    }
  }
  const ms = Math.round(median(times));
  console.log(`lifecycle ms: ${ms} (runs: ${times.map((t) => Math.round(t)).join(', ')})`);
  assert.ok(ms < 15000, `lifecycle median ${ms} ms is sane`);
});

test('connecting to an ended session is refused', async () => {
  const s = await sessions.create({});
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  await assert.rejects(chromium.connectOverCDP(s.connectUrl, { timeout: 10000 }),
    `connectOverCDP to ${redact(s.connectUrl)} of a COMPLETED session must fail`);
});
