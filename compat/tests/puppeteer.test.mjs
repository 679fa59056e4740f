// puppeteer-core over the CDP connect URL (spec §4.1, §5.1, §8): browser.close() sends
// CDP Browser.close, which ends the session even with keepAlive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import puppeteer from 'puppeteer-core';
import { client, Sessions, startPageServer, waitForStatus } from './helpers.mjs';

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

test('puppeteer: newPage, goto, evaluate, browser.close() ends a keepAlive session', async () => {
  const s = await sessions.create({ keepAlive: true, browserSettings: { viewport: { width: 1100, height: 650 } } });
  const browser = await puppeteer.connect({ browserWSEndpoint: s.connectUrl, defaultViewport: null });
  let closed = false;
  try {
    assert.match(await browser.version(), /chrom/i, 'Browser.getVersion answers');
    const existing = await browser.pages();
    assert.ok(existing.length >= 1, 'the default page exists (spec §4.1)');

    const page = await browser.newPage();
    const resp = await page.goto(site.url + 'pptr', { waitUntil: 'load' });
    assert.equal(resp.status(), 200);
    const got = await page.evaluate(() => ({
      marker: document.querySelector('#marker').textContent,
      path: location.pathname,
      ua: navigator.userAgent,
    }));
    assert.equal(got.marker, site.marker);
    assert.equal(got.path, '/pptr');
    assert.equal(await page.title(), 'compat /pptr');

    // defaultViewport:null keeps the server-side viewport for the default page.
    const vp = await existing[0].evaluate(() => ({ w: window.innerWidth, h: window.innerHeight }));
    assert.deepEqual(vp, { w: 1100, h: 650 }, 'browserSettings.viewport on the default page');

    const shot = await page.screenshot();
    assert.ok(shot.length > 1000, 'screenshot bytes');
    await page.close();

    await browser.close(); // CDP Browser.close
    closed = true;
  } finally {
    if (!closed) await browser.disconnect().catch(() => {});
  }
  const ended = await waitForStatus(bb, s.id, 'COMPLETED', 7000);
  assert.equal(typeof ended.endedAt, 'string');
  assert.equal(ended.connectUrl ?? undefined, undefined);
});

test('puppeteer: disconnect() of a keepAlive session does not end it', async () => {
  const s = await sessions.create({ keepAlive: true });
  const browser = await puppeteer.connect({ browserWSEndpoint: s.connectUrl, defaultViewport: null });
  const [page] = await browser.pages();
  await page.goto(site.url + 'stay');
  await browser.disconnect();
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal((await bb.sessions.retrieve(s.id)).status, 'RUNNING');
  const rel = await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  assert.equal(rel.status, 'COMPLETED');
});

test('puppeteer: disconnect() without keepAlive ends the session after the grace period', async () => {
  const s = await sessions.create({});
  const browser = await puppeteer.connect({ browserWSEndpoint: s.connectUrl, defaultViewport: null });
  const [page] = await browser.pages();
  await page.goto(site.url + 'bye');
  await browser.disconnect();
  await waitForStatus(bb, s.id, 'COMPLETED', 7000);
});
