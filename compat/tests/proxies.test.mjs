// Proxies and browser settings through the official SDK and playwright-core (spec §3.1,
// §5.10): per-domain routing to external upstreams (one with basic auth), `none` going
// direct, proxyBytes in the session and the project's usage, bad rules refused with 400,
// and browserSettings (viewport, os, locale, allowedDomains, blockAds) seen from the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { chromium } from 'playwright-core';
import { client, Sessions, startPageServer, projectID } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
let site, upA, upB;

/**
 * startUpstream is an upstream HTTP proxy that answers every absolute-form request itself,
 * for any host (Chromium sends absolute URLs to HTTP proxies, so no DNS is needed), and
 * records the hosts. With user set it wants basic auth.
 */
async function startUpstream(name, user, pass) {
  const hosts = [];
  const srv = http.createServer((req, res) => {
    if (user) {
      const want = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
      if (req.headers['proxy-authorization'] !== want) {
        res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"' }).end('auth');
        return;
      }
    }
    let u;
    try {
      u = new URL(req.url);
    } catch {
      res.writeHead(400).end('absolute URLs only');
      return;
    }
    hosts.push(u.hostname);
    res.setHeader('access-control-allow-origin', '*');
    if (u.pathname === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(512 * 1024));
      return;
    }
    if (u.pathname.endsWith('.gif')) {
      res.writeHead(200, { 'content-type': 'image/gif' });
      res.end(Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64'));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<title>${name} ${u.hostname}</title>${u.searchParams.get('html') || ''}`);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    hosts,
    close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }),
  };
}

before(async () => {
  site = await startPageServer();
  upA = await startUpstream('A');
  upB = await startUpstream('B', 'bob', 's3cret');
});
after(async () => {
  await sessions.releaseAll();
  await Promise.all([site?.close(), upA?.close(), upB?.close()]);
});

test('per-domain routing, none, wrong credentials, proxyBytes and usage', async () => {
  const s = await sessions.create({
    proxies: [
      { type: 'external', server: upA.url, domainPattern: '.*\\.a\\.test' },
      { type: 'external', server: upB.url, username: 'bob', password: 's3cret', domainPattern: '(.*\\.)?b\\.test' },
      { type: 'external', server: upB.url, username: 'bob', password: 'wrong', domainPattern: 'bad\\.test' },
      { type: 'none', domainPattern: '127\\.0\\.0\\.1' },
    ],
  });
  assert.equal(s.proxyBytes, 0);
  const browser = await chromium.connectOverCDP(s.connectUrl);
  try {
    const page = browser.contexts()[0].pages()[0];
    await page.goto('http://www.a.test/');
    assert.equal(await page.title(), 'A www.a.test');
    await page.goto('http://b.test/');
    assert.equal(await page.title(), 'B b.test');
    await page.goto(site.url + 'direct');
    assert.equal(await page.title(), 'compat /direct');
    assert.deepEqual([...new Set(upA.hosts)], ['www.a.test'], 'A sees only its hosts');
    assert.deepEqual([...new Set(upB.hosts)], ['b.test'], 'B sees only its hosts; the none rule goes direct');

    const resp = await page.goto('http://bad.test/');
    assert.equal(resp.status(), 502);
    const text = await page.textContent('body');
    assert.match(text, /refused the credentials/);
    assert.doesNotMatch(text, /wrong/, 'the password is not shown');

    const n = await page.evaluate(() => fetch('http://big.a.test/big').then((r) => r.arrayBuffer()).then((b) => b.byteLength));
    assert.equal(n, 512 * 1024);
  } finally {
    await browser.close();
  }
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  const ended = await bb.sessions.retrieve(s.id);
  assert.ok(ended.proxyBytes >= 512 * 1024 && ended.proxyBytes < 1024 * 1024, `proxyBytes ${ended.proxyBytes}`);
  const usage = await bb.projects.usage(await projectID());
  assert.ok(usage.proxyBytes >= ended.proxyBytes, `usage.proxyBytes ${usage.proxyBytes}`);
});

test('bad proxy rules and proxies: true without managed proxies are 400s naming the field', async () => {
  const cases = [
    [true, /body\/proxies: this server has no managed proxies/],
    [[{ type: 'external' }], /body\/proxies\/0\/server is required/],
    [[{ type: 'external', server: 'gopher://p' }], /body\/proxies\/0\/server must use the scheme/],
    [[{ type: 'none', domainPattern: '(' }], /body\/proxies\/0\/domainPattern is not a valid regular expression/],
    [[{ type: 'tor' }], /body\/proxies\/0\/type must be one of/],
  ];
  for (const [proxies, want] of cases) {
    await assert.rejects(bb.sessions.create({ proxies }), (e) => {
      assert.equal(e.status, 400, `${JSON.stringify(proxies)}: ${e.message}`);
      assert.match(e.message, want);
      return true;
    });
  }
});

test('browserSettings: viewport, os, locale, allowedDomains and blockAds seen from the page', async () => {
  const s = await sessions.create({
    proxies: [{ type: 'external', server: upA.url }],
    browserSettings: {
      viewport: { width: 1200, height: 800 },
      os: 'windows',
      fingerprint: { locales: ['de-DE'] },
      allowedDomains: ['allowed.test'],
      blockAds: true,
    },
  });
  const browser = await chromium.connectOverCDP(s.connectUrl);
  try {
    const page = browser.contexts()[0].pages()[0];
    const html = '<img id=ad src="http://ad.doubleclick.net/x.gif"><img id=px src="http://img.other.test/p.gif">';
    await page.goto('http://shop.allowed.test/?html=' + encodeURIComponent(html), { waitUntil: 'load' });
    const got = await page.evaluate(() => ({
      w: innerWidth, h: innerHeight, ua: navigator.userAgent, platform: navigator.platform,
      lang: navigator.language, webdriver: navigator.webdriver,
      ad: document.getElementById('ad').naturalWidth, px: document.getElementById('px').naturalWidth,
    }));
    assert.deepEqual({ w: got.w, h: got.h }, { w: 1200, h: 800 });
    assert.match(got.ua, /Windows NT 10\.0/);
    assert.doesNotMatch(got.ua, /Headless/);
    assert.equal(got.platform, 'Win32');
    assert.equal(got.lang, 'de-DE');
    assert.equal(got.webdriver, false);
    assert.equal(got.ad, 0, 'the ad host is blocked');
    assert.equal(got.px, 1, 'a subresource from another domain still loads');
    assert.ok(!upA.hosts.includes('ad.doubleclick.net'));
    // Blocked as aborted, with no error page, so the tab stays usable (docs/COMPATIBILITY.md).
    await assert.rejects(page.goto('http://other.test/'), /ERR_ABORTED/);
    await page.goto('http://shop.allowed.test/?html=again', { waitUntil: 'load' });
  } finally {
    await browser.close();
  }
});
