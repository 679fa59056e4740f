// Selenium on a session's seleniumRemoteUrl (spec §2.3, §4.2, §8) with the official npm
// `selenium-webdriver` client, built the way Browserbase's Node quickstart builds it: a
// custom http.Agent adds the credentials header to every request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { Builder, By, error as wdError } from 'selenium-webdriver';
import { chromium } from 'playwright-core';
import { client, baseURL, apiKey, Sessions, sleep, waitFor, waitForStatus } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
let site;
before(async () => {
  site = await startFormServer();
});
after(async () => {
  await sessions.releaseAll();
  await site?.close();
});

/** agentWith returns the quickstart's http.Agent: it sets headers on every request. */
function agentWith(headers) {
  const agent = new http.Agent({});
  agent.addRequest = (req, options) => {
    for (const [k, v] of Object.entries(headers)) req.setHeader(k, v);
    http.Agent.prototype.addRequest.call(agent, req, options);
  };
  return agent;
}

/** driverFor builds a driver exactly as the Browserbase Node quickstart does. */
function driverFor(session, headers) {
  return new Builder()
    .forBrowser('chrome')
    .usingHttpAgent(agentWith(headers))
    .usingServer(session.seleniumRemoteUrl)
    .build();
}

/**
 * chromedrivers lists the chromedriver processes of the server under test (children of
 * the process serving on BROWSERBASE_BASE_URL's port, or in a cluster on any of
 * COMPAT_SERVER_PORTS, which compat/run.sh sets), as "pid cmdline".
 */
function chromedrivers() {
  const ports = (process.env.COMPAT_SERVER_PORTS || new URL(baseURL()).port).split(/\s+/).filter(Boolean);
  const found = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let cmd, stat;
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (!cmd.split('\0')[0].endsWith('chromedriver')) continue;
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z') continue;
    let parent = '';
    try {
      parent = fs.readFileSync(`/proc/${ppid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {}
    if (ports.some((port) => parent.includes(`127.0.0.1:${port} `))) found.push(`${pid} ${cmd.replace(/\0/g, ' ')}`);
  }
  return found;
}

/** pngSize reads the width and height from a PNG's IHDR chunk. */
function pngSize(buf) {
  assert.equal(buf.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'PNG signature');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

/** startFormServer serves a form: typing into #q and clicking #go writes "hello <q>" to #out. */
async function startFormServer() {
  const srv = http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!doctype html><html><head><title>selenium ${path}</title></head><body>
<input id="q"><button id="go" onclick="document.getElementById('out').textContent='hello '+document.getElementById('q').value">go</button>
<p id="out"></p><p id="path">${path}</p></body></html>`);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}/`,
    close: () => new Promise((resolve) => { srv.closeAllConnections?.(); srv.close(() => resolve()); }),
  };
}

/** raw sends one WebDriver request with fetch and returns {status, value}. */
async function raw(session, method, path, headers, body) {
  const res = await fetch(session.seleniumRemoteUrl + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  return { status: res.status, value: json.value };
}

/** quickstart runs the quickstart flow on a new session and checks everything after quit. */
async function quickstart(headersOf) {
  const s = await sessions.create({ browserSettings: { viewport: { width: 1024, height: 700 } } });
  const start = Date.now();
  const driver = driverFor(s, headersOf(s));
  let quit = false;
  try {
    const first = await driver.getCurrentUrl();
    const ms = Date.now() - start;
    console.log(`selenium first command ms: ${ms} (build() → getCurrentUrl(), chromedriver start included)`);
    assert.equal(first, 'about:blank', "the session's own page");
    assert.deepEqual(chromedrivers().length, 1, `one chromedriver runs for the session: ${chromedrivers()}`);

    await driver.get(site.url + 'form');
    assert.equal(await driver.getTitle(), 'selenium /form');
    await driver.findElement(By.css('#q')).sendKeys('world');
    await driver.findElement(By.id('go')).click();
    assert.equal(await driver.findElement(By.id('out')).getText(), 'hello world');

    const size = await driver.executeScript('return [innerWidth, innerHeight]');
    assert.deepEqual(size, [1024, 700], 'the session keeps its viewport');
    const shot = Buffer.from(await driver.takeScreenshot(), 'base64');
    assert.deepEqual(pngSize(shot), { width: 1024, height: 700 }, 'screenshot of the viewport');

    await driver.quit();
    quit = true;
    const ended = await waitForStatus(bb, s.id, 'COMPLETED', 5000);
    assert.ok(ended.endedAt, 'endedAt set');
    assert.deepEqual(chromedrivers(), [], 'no chromedriver left after quit');
  } finally {
    if (!quit) await driver.quit().catch(() => {});
  }
}

test('quickstart with x-bb-signing-key: get, find, type, click, read, screenshot, quit → COMPLETED', async () => {
  await quickstart((s) => ({ 'x-bb-signing-key': s.signingKey }));
});

test('quickstart with x-bb-api-key + session-id', async () => {
  await quickstart((s) => ({ 'x-bb-api-key': apiKey(), 'session-id': s.id }));
});

test('Selenium and Playwright (connectOverCDP) on one session see the same page', async () => {
  const s = await sessions.create({});
  const driver = driverFor(s, { 'x-bb-signing-key': s.signingKey });
  let pw;
  try {
    await driver.get(site.url + 'shared');
    pw = await chromium.connectOverCDP(s.connectUrl);
    const page = pw.contexts()[0].pages()[0];
    assert.ok(page, 'default page');
    assert.equal(page.url(), site.url + 'shared', 'Playwright sees the page Selenium opened');

    await page.fill('#q', 'playwright');
    await driver.findElement(By.id('go')).click();
    assert.equal(await driver.findElement(By.id('out')).getText(), 'hello playwright');
    await page.goto(site.url + 'moved');
    assert.equal(await driver.getCurrentUrl(), site.url + 'moved', 'Selenium sees the navigation');

    // The Playwright client leaves; Selenium still holds the session (no keepAlive).
    await pw.close();
    pw = undefined;
    await sleep(3000);
    assert.equal((await bb.sessions.retrieve(s.id)).status, 'RUNNING', 'session kept by the WebDriver session');
    assert.equal(await driver.findElement(By.id('path')).getText(), '/moved');

    await driver.quit();
    await waitForStatus(bb, s.id, 'COMPLETED', 5000);
    assert.deepEqual(chromedrivers(), []);
  } finally {
    await pw?.close().catch(() => {});
    await driver.quit().catch(() => {});
  }
});

test('unauthenticated and wrong-session requests are refused', async () => {
  const a = await sessions.create({ keepAlive: true });
  const b = await sessions.create({ keepAlive: true });

  // The quickstart without the header: New Session is refused.
  const anon = new Builder().forBrowser('chrome').usingServer(a.seleniumRemoteUrl).build();
  // build() returns a thenable driver whose own promise rejects: await it (as users do),
  // or node:test counts an unhandled rejection.
  const err = await anon.then(() => null, (e) => e);
  assert.ok(err instanceof wdError.SessionNotCreatedError, `got ${err?.constructor?.name}: ${err?.message}`);
  assert.match(err.message, /Unauthorized/);

  let r = await raw(a, 'POST', '/session', {}, { capabilities: {} });
  assert.equal(r.status, 401);
  assert.equal(r.value.error, 'session not created');
  r = await raw(a, 'POST', '/session', { 'x-bb-signing-key': a.signingKey + 'x' }, { capabilities: {} });
  assert.equal(r.status, 401, 'tampered signing key');
  r = await raw(a, 'POST', '/session', { 'x-bb-api-key': 'bb_wrong', 'session-id': a.id }, { capabilities: {} });
  assert.equal(r.status, 401, 'wrong API key');

  const driver = driverFor(a, { 'x-bb-signing-key': a.signingKey });
  try {
    await driver.get(site.url + 'a');
    const id = (await driver.getSession()).getId();
    for (const [what, headers, status] of [
      ['no credentials', {}, 401],
      ['the other session\'s signing key', { 'x-bb-signing-key': b.signingKey }, 404],
      ['the other session\'s id with the API key', { 'x-bb-api-key': apiKey(), 'session-id': b.id }, 404],
    ]) {
      const res = await raw(a, 'GET', `/session/${id}/url`, headers);
      assert.equal(res.status, status, `${what}: HTTP ${res.status} ${JSON.stringify(res.value)}`);
      assert.equal(typeof res.value.error, 'string', `${what}: WebDriver error body`);
      const del = await raw(a, 'DELETE', `/session/${id}`, headers);
      assert.equal(del.status, status, `${what}: quit refused`);
    }
    // None of that disturbed the session.
    assert.equal(await driver.getCurrentUrl(), site.url + 'a');
    assert.equal((await bb.sessions.retrieve(a.id)).status, 'RUNNING');
    assert.equal((await bb.sessions.retrieve(b.id)).status, 'RUNNING');
  } finally {
    await driver.quit().catch(() => {});
  }
  await waitForStatus(bb, a.id, 'COMPLETED', 5000);
  await waitFor(() => chromedrivers().length === 0, { timeout: 5000, what: 'no chromedriver' });
});
