// keepAlive sessions (spec §4.1, §5.3): disconnects do not end them, reconnects with the
// same connectUrl work, several clients share one browser, release closes connections.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { client, Sessions, startPageServer, sleep, waitFor, waitForStatus } from './helpers.mjs';

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

function disconnected(emitter) {
  return new Promise((resolve) => emitter.once('disconnected', () => resolve(Date.now())));
}

test('keepAlive: survive disconnect, reconnect, two clients, release closes them', async () => {
  const s = await sessions.create({ keepAlive: true });
  assert.equal(s.keepAlive, true);

  // First client: navigate, then disconnect.
  const pw1 = await chromium.connectOverCDP(s.connectUrl);
  const page1 = pw1.contexts()[0].pages()[0];
  assert.ok(page1, 'default page');
  await page1.goto(site.url + 'kept');
  assert.equal(await page1.textContent('#marker'), site.marker);
  await pw1.close(); // disconnect only

  await sleep(3000);
  const mid = await bb.sessions.retrieve(s.id);
  assert.equal(mid.status, 'RUNNING', 'keepAlive session still RUNNING 3 s after its client left');
  assert.equal(mid.connectUrl, s.connectUrl, 'connectUrl unchanged');

  // Reconnect with the same URL: the browser state is still there.
  const pw2 = await chromium.connectOverCDP(s.connectUrl);
  let pup;
  try {
    const pages = pw2.contexts()[0].pages();
    const page2 = pages.find((p) => p.url() === site.url + 'kept');
    assert.ok(page2, `reconnected client sees the page left open (pages: ${pages.map((p) => p.url()).join(', ')})`);
    assert.equal(await page2.textContent('#marker'), site.marker);

    // Second simultaneous client: puppeteer-core.
    pup = await puppeteer.connect({ browserWSEndpoint: s.connectUrl, defaultViewport: null });
    const ppages = await pup.pages();
    const ppage = ppages.find((p) => p.url() === site.url + 'kept');
    assert.ok(ppage, `puppeteer sees the same page (pages: ${ppages.map((p) => p.url()).join(', ')})`);

    // Navigation by one client is visible to the other.
    await page2.goto(site.url + 'moved');
    await waitFor(() => ppage.url() === site.url + 'moved', { timeout: 5000, what: 'puppeteer to see the navigation' });
    assert.equal(await ppage.evaluate(() => document.querySelector('#path').textContent), '/moved');

    // And the other way round.
    await ppage.evaluate(() => {
      document.querySelector('#path').textContent = 'from-puppeteer';
    });
    assert.equal(await page2.textContent('#path'), 'from-puppeteer');

    const pwClosed = disconnected(pw2);
    const pupClosed = disconnected(pup);
    const t0 = Date.now();
    const rel = await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
    assert.equal(rel.status, 'COMPLETED');
    const timeout = (p, what) =>
      Promise.race([p, sleep(10000).then(() => { throw new Error(`${what} was not closed within 10 s of release`); })]);
    const [a, b] = await Promise.all([timeout(pwClosed, 'playwright connection'), timeout(pupClosed, 'puppeteer connection')]);
    console.log(`connections closed ${a - t0} ms / ${b - t0} ms after release`);
    assert.equal(pw2.isConnected(), false);
    assert.equal(pup.connected, false);
  } finally {
    await pw2.close().catch(() => {});
    if (pup) await pup.disconnect().catch(() => {});
  }
  const ended = await waitForStatus(bb, s.id, 'COMPLETED', 2000);
  assert.equal(ended.connectUrl ?? undefined, undefined);
});

test('keepAlive: reconnecting after release is refused', async () => {
  // The URL was valid a moment ago; once released the session must not be reachable.
  const s = await sessions.create({ keepAlive: true });
  const pw = await chromium.connectOverCDP(s.connectUrl);
  await pw.close();
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  await assert.rejects(chromium.connectOverCDP(s.connectUrl, { timeout: 10000 }));
});
