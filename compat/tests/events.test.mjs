// The browser's events in the session logs (spec §2.6: method is a "CDP method/event
// name"): through the official SDK's logs.list, a page's network requests (a missing
// image's 404), console messages and navigations appear with the pageId of the
// commands the client (Playwright) sent that tab, each tab its own; events have a
// request (params, rawBody, timestamp) and no response. The client's own console
// listening is unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { chromium } from 'playwright-core';
import { client, Sessions, waitFor } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
let site;

before(async () => {
  const srv = http.createServer((req, res) => {
    if (req.url !== '/' && req.url !== '/second') {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    const word = req.url === '/' ? 'boom' : 'second-tab';
    res.end(`<!doctype html><html><head><title>events</title></head><body><img src="/missing-${word}.png"><script>console.error(${JSON.stringify(word)})</script></body></html>`);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  site = { url: `http://127.0.0.1:${srv.address().port}/`, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(() => r()); }) };
});
after(async () => {
  await sessions.releaseAll();
  await site?.close();
});

/** pageOf returns the pageId of the client's Page.navigate to url. */
function pageOf(logs, url) {
  return logs.find((l) => l.method === 'Page.navigate' && l.request?.params?.url === url)?.pageId;
}

/** tabEvents says which of a tab's events the logs hold on its page. */
function tabEvents(logs, page, word) {
  const on = logs.filter((l) => l.pageId === page);
  const img = `/missing-${word}.png`;
  return {
    request: on.some((l) => l.method === 'Network.requestWillBeSent' && l.request.params.request?.url?.endsWith(img)),
    status404: on.some((l) => l.method === 'Network.responseReceived' && l.request.params.response?.url?.endsWith(img) && l.request.params.response.status === 404),
    console: on.some((l) => l.method === 'Runtime.consoleAPICalled' && l.request.params.args?.[0]?.value === word),
    navigated: on.some((l) => l.method === 'Page.frameNavigated' && typeof l.frameId === 'string' && l.request.params.frame?.url?.startsWith(site.url)),
  };
}

for (const recordSession of [true, false]) {
  test(`logs.list carries the browser's events, by tab (recordSession: ${recordSession})`, async () => {
    const s = await sessions.create({ browserSettings: { recordSession } });
    const browser = await chromium.connectOverCDP(s.connectUrl);
    try {
      const page = browser.contexts()[0].pages()[0];
      const heard = [];
      page.on('console', (m) => heard.push(m.text()));
      await page.goto(site.url, { waitUntil: 'load' });
      const second = await browser.contexts()[0].newPage();
      await second.goto(site.url + 'second', { waitUntil: 'load' });
      await waitFor(async () => heard.includes('boom'), { timeout: 10000, what: "the client's own console event" });

      const logs = await waitFor(async () => {
        const all = await bb.sessions.logs.list(s.id);
        const p1 = pageOf(all, site.url), p2 = pageOf(all, site.url + 'second');
        if (p1 === undefined || p2 === undefined) return false;
        const ok = (e) => e.request && e.status404 && e.console && e.navigated;
        return ok(tabEvents(all, p1, 'boom')) && ok(tabEvents(all, p2, 'second-tab')) && all;
      }, { timeout: 30000, what: "both tabs' events in the logs" });
      const p1 = pageOf(logs, site.url), p2 = pageOf(logs, site.url + 'second');
      assert.ok(p1 > 0 && p2 > 0 && p1 !== p2, `tabs have pages of their own (${p1}, ${p2})`);
      assert.ok(logs.some((l) => l.method === 'Target.attachedToTarget' && l.pageId === p2), 'the new tab is attached');
      const eventNames = ['Network.requestWillBeSent', 'Network.responseReceived', 'Network.loadingFinished', 'Runtime.consoleAPICalled', 'Page.frameNavigated'];
      for (const l of logs.filter((l) => eventNames.includes(l.method))) {
        assert.equal(l.sessionId, s.id);
        assert.equal(l.response, undefined, 'an event has no response');
        assert.equal(typeof l.timestamp, 'number');
        const raw = JSON.parse(l.request.rawBody);
        assert.equal(raw.method, l.method);
        assert.deepEqual(raw.params, l.request.params);
      }
      assert.ok(!logs.some((l) => l.method === 'Network.getResponseBody' && l.pageId === 0), 'no bodies fetched for the logs');
    } finally {
      await browser.close().catch(() => {});
    }
  });
}
