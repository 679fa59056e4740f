// Live view, DevTools and dashboard (spec §2.5, §3.5, §4.3), driven the way a person uses
// them: a separate Chromium (playwright-core, CHROME_PATH) is the viewer, and the
// session's own browser is driven over CDP (connectUrl) as an agent would.
// Screenshots and the measured frame rate and input latency go to test-artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { client, Sessions, waitFor, sleep, median, chromePath, baseURL, apiKey } from './helpers.mjs';

const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-artifacts');
fs.mkdirSync(ARTIFACTS, { recursive: true });
const metrics = {};

const bb = client();
const sessions = new Sessions(bb);
let app, other, viewer, agent, session, page;

// The session's test app: a marker block whose colour names the page, a button that
// counts clicks (and flips a block's colour), an input, and an animation.
function appPage(name, colour) {
  return `<!doctype html><html><head><title>liveview ${name}</title>
<style>body{margin:0;font:16px sans-serif;background:#fff}
#marker{position:absolute;left:20px;top:20px;width:200px;height:200px;background:${colour}}
#btn{position:absolute;left:300px;top:40px;width:200px;height:80px;font-size:20px}
#flash{position:absolute;left:300px;top:160px;width:200px;height:100px;background:rgb(0,0,0)}
#inp{position:absolute;left:300px;top:300px;width:300px;height:40px;font-size:20px}
#anim{position:absolute;left:700px;top:20px;width:300px;height:300px}</style></head>
<body><div id="marker"></div><button id="btn">Click me</button><div id="flash"></div>
<input id="inp" autocomplete="off"><canvas id="anim" width="300" height="300"></canvas>
<script>
window.clicks = 0; window.downs = [];
btn.addEventListener('mousedown', () => window.downs.push(Date.now()));
btn.addEventListener('click', () => {
  window.clicks++;
  flash.style.background = window.clicks % 2 ? 'rgb(255,255,255)' : 'rgb(0,0,0)';
});
const g = anim.getContext('2d'); let n = 0;
(function tick() { n++; g.fillStyle = 'hsl(' + (n * 7 % 360) + ',80%,50%)'; g.fillRect(0, 0, 300, 300); requestAnimationFrame(tick); })();
</script></body></html>`;
}

function serve(handler) {
  const srv = http.createServer(handler);
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${srv.address().port}/`,
    close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  })));
}

// No test may hang a suite run: each gets at most this long (the machine can be slow).
const TEST_TIMEOUT = 240_000;

const COLOURS = { green: [0, 160, 0], red: [220, 0, 0], blue: [0, 0, 220] };

before(async () => {
  app = await serve((req, res) => {
    const name = req.url.slice(1).split('?')[0] || 'green';
    const c = COLOURS[name] || COLOURS.green;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(appPage(name, `rgb(${c.join(',')})`));
  });
  session = await sessions.create({ keepAlive: true, timeout: 3600 });
  agent = await chromium.connectOverCDP(session.connectUrl);
  page = agent.contexts()[0].pages()[0];
  await page.goto(app.url + 'green');
  viewer = await chromium.launch({ executablePath: chromePath(), args: ['--no-sandbox'] });
});

after(async () => {
  fs.writeFileSync(path.join(ARTIFACTS, 'liveview-metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  console.log('live view metrics:', JSON.stringify(metrics));
  await viewer?.close();
  await agent?.close();
  await sessions.releaseAll();
  await app?.close();
  await other?.close();
});

async function debugURLs(query = '') {
  const r = await fetch(`${baseURL()}/v1/sessions/${session.id}/debug${query}`, { headers: { 'X-BB-API-Key': apiKey() } });
  assert.equal(r.status, 200, `GET /debug${query}: ${r.status}`);
  return r.json();
}

async function openViewer(url, viewport = { width: 1280, height: 800 }) {
  const vp = await viewer.newPage({ viewport });
  await vp.goto(url);
  await vp.waitForFunction(() => window.browserdLive && window.browserdLive.stats.frames > 0, null, { timeout: 30000 });
  return vp;
}

// colourAt reads the viewer's canvas at a point of the session's page.
const colourAt = (vp, x, y) => vp.evaluate(([x, y]) => window.browserdLive.pixel(x, y), [x, y]);
const near = (got, want, tol = 60) => got.every((v, i) => Math.abs(v - want[i]) <= tol);

async function waitColour(vp, x, y, want, what) {
  let last;
  await waitFor(async () => near((last = await colourAt(vp, x, y)), want), { timeout: 30000, what: `${what} (last ${last})` });
}

async function clickAt(vp, x, y) {
  const p = await vp.evaluate(([x, y]) => window.browserdLive.toClient(x, y), [x, y]);
  await vp.mouse.click(p.x, p.y);
}

let vp; // the fullscreen viewer, shared by the tests below

test('debuggerFullscreenUrl shows the session page live', { timeout: TEST_TIMEOUT }, async () => {
  const live = await bb.sessions.debug(session.id);
  assert.ok(live.pages.length >= 1, 'pages listed');
  assert.equal(live.pages[0].title, 'liveview green');
  vp = await openViewer(live.debuggerFullscreenUrl);
  await waitColour(vp, 120, 120, COLOURS.green, 'the green marker');
  const tabs = await vp.locator('#tabs .tab').allTextContents();
  assert.ok(tabs.includes('liveview green'), `tab strip shows the page title: ${tabs}`);
  await vp.screenshot({ path: path.join(ARTIFACTS, 'liveview-fullscreen.png') });
});

test('a click in the live view reaches the page; input latency', { timeout: TEST_TIMEOUT }, async () => {
  const box = await page.locator('#btn').boundingBox();
  const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  await clickAt(vp, cx, cy);
  await waitFor(() => page.evaluate(() => window.clicks === 1), { timeout: 30000, what: 'the page to see the click' });

  // Latency: from the viewer's click to the page's mousedown handler (same machine, same
  // clock), and to the first frame that shows the click's effect (#flash flips colour).
  const toPage = [], toGlass = [];
  let missed = 0;
  for (let i = 0; i < 10; i++) {
    const before = await page.evaluate(() => window.downs.length);
    const want = (await page.evaluate(() => window.clicks)) % 2 ? [0, 0, 0] : [255, 255, 255];
    const watch = vp.evaluate((want) => new Promise((resolve) => {
      const t = setTimeout(() => resolve(-1), 10000);
      (function poll() {
        const px = window.browserdLive.pixel(400, 210);
        // Every 20 ms: reading the canvas back on every animation frame would slow the
        // viewer down, and with it what is measured.
        if (px.every((v, i) => Math.abs(v - want[i]) < 40)) { clearTimeout(t); resolve(Date.now()); } else setTimeout(poll, 20);
      })();
    }), want);
    await sleep(30);
    const t0 = Date.now();
    await clickAt(vp, cx, cy);
    const tGlass = await watch;
    const downs = await waitFor(async () => {
      const d = await page.evaluate(() => window.downs);
      return d.length > before ? d : null;
    }, { timeout: 30000, what: 'mousedown on the page' });
    toPage.push(downs[downs.length - 1] - t0);
    if (tGlass > 0) toGlass.push(tGlass - t0);
    else missed++;
  }
  assert.ok(toGlass.length >= toPage.length / 2, `the clicks showed in the live view (${missed} of ${toPage.length} not within 10 s)`);
  const rtt = await vp.evaluate(() => window.browserdLive.stats.inputRtt);
  metrics.inputToPageMs = { median: median(toPage), max: Math.max(...toPage), n: toPage.length };
  metrics.clickToFrameMs = { median: median(toGlass), max: Math.max(...toGlass), n: toGlass.length, missed };
  metrics.inputRoundTripMs = { median: Math.round(median(rtt) * 10) / 10, n: rtt.length };
  assert.equal(await page.evaluate(() => window.clicks), 11);
});

test('typing into an input through the live view', { timeout: TEST_TIMEOUT }, async () => {
  const box = await page.locator('#inp').boundingBox();
  await clickAt(vp, box.x + 20, box.y + box.height / 2);
  await waitFor(() => page.evaluate(() => document.activeElement && document.activeElement.id === 'inp'), { timeout: 30000, what: 'the input to get focus' });
  await vp.keyboard.type('Hello live view!');
  await waitFor(() => page.evaluate(() => document.getElementById('inp').value === 'Hello live view!'), { timeout: 30000, what: 'the typed text' });
  await vp.keyboard.press('Backspace');
  await vp.keyboard.press('Shift+Home');
  await vp.keyboard.type('X');
  await waitFor(async () => (await page.inputValue('#inp')) === 'X', { timeout: 30000, what: 'editing keys (Backspace, Shift+Home) to work' });
});

test('the live view follows navigations and switches tabs', { timeout: TEST_TIMEOUT }, async () => {
  await page.goto(app.url + 'blue');
  await waitColour(vp, 120, 120, COLOURS.blue, 'the page after navigation');
  await waitFor(async () => (await vp.inputValue('#url')).endsWith('/blue'), { timeout: 30000, what: 'the address bar to follow' });

  const second = await agent.contexts()[0].newPage();
  await second.goto(app.url + 'red');
  await waitFor(async () => (await vp.locator('#tabs .tab').count()) === 2, { timeout: 30000, what: 'the second tab in the tab strip' });
  // A new tab comes to the front, as in a browser.
  await waitColour(vp, 120, 120, COLOURS.red, 'the new tab');
  await vp.locator('#tabs .tab', { hasText: 'liveview blue' }).click();
  await waitColour(vp, 120, 120, COLOURS.blue, 'the first tab again');
  await vp.screenshot({ path: path.join(ARTIFACTS, 'liveview-tabs.png') });
  await vp.locator('#tabs .tab', { hasText: 'liveview red' }).click();
  await waitColour(vp, 120, 120, COLOURS.red, 'the second tab');
  await second.close();
  await waitFor(async () => (await vp.locator('#tabs .tab').count()) === 1, { timeout: 30000, what: 'the closed tab to leave the strip' });
  await waitColour(vp, 120, 120, COLOURS.blue, 'the remaining tab');
});

test('frame rate of an animated page, against a direct screencast', { timeout: TEST_TIMEOUT }, async () => {
  // Chromium's own rate first, with the live view paused: a CDP client screencasting
  // the same page at the same quality, acking every frame at once.
  // (The documented way for an embedding page: a message to the view's window.)
  await vp.evaluate(() => window.postMessage({ type: 'browserd.pause', paused: true }, '*'));
  await sleep(500);
  const cdp = await agent.contexts()[0].newCDPSession(page);
  let direct = 0;
  cdp.on('Page.screencastFrame', (f) => { direct++; cdp.send('Page.screencastFrameAck', { sessionId: f.sessionId }).catch(() => {}); });
  await cdp.send('Page.startScreencast', { format: 'jpeg', quality: 60, maxWidth: 1280, maxHeight: 720 });
  await sleep(4000);
  await cdp.send('Page.stopScreencast');
  await cdp.detach();
  const rafs = await page.evaluate(() => new Promise((resolve) => {
    let n = 0; const t0 = performance.now();
    setTimeout(() => resolve(n), 3000); // a hidden page runs no animation frames
    (function f() { n++; if (performance.now() - t0 < 1000) requestAnimationFrame(f); else resolve(n); })();
  }));
  await vp.evaluate(() => window.postMessage({ type: 'browserd.pause', paused: false }, '*'));
  await sleep(1000);

  const f0 = await vp.evaluate(() => window.browserdLive.stats.frames);
  const t0 = Date.now();
  await sleep(4000);
  const f1 = await vp.evaluate(() => window.browserdLive.stats.frames);
  const fps = (f1 - f0) / ((Date.now() - t0) / 1000);
  const bytes = await vp.evaluate(() => window.browserdLive.stats.bytes / window.browserdLive.stats.frames);
  metrics.framesPerSecond = Math.round(fps * 10) / 10;
  metrics.directScreencastFramesPerSecond = Math.round(direct / 4 * 10) / 10;
  metrics.pageAnimationFramesPerSecond = rafs;
  metrics.averageFrameBytes = Math.round(bytes);
  metrics.loadAverage = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  assert.ok(f1 > f0, `the animation streams (${fps.toFixed(1)} fps; Chromium alone ${direct / 4} fps)`);
});

test('the viewer reconnects by itself', { timeout: TEST_TIMEOUT }, async () => {
  const live = await debugURLs();
  const rc = await viewer.newPage({ viewport: { width: 800, height: 600 } });
  // Keep a handle on the page's websocket, to drop it as a network would.
  await rc.addInitScript(() => {
    const W = window.WebSocket;
    window.WebSocket = class extends W {
      constructor(...args) { super(...args); window.__ws = this; }
    };
  });
  await rc.goto(live.debuggerFullscreenUrl);
  await rc.waitForFunction(() => window.browserdLive && window.browserdLive.stats.frames > 0, null, { timeout: 30000 });
  await rc.evaluate(() => window.__ws.close(4000, 'test'));
  await rc.waitForFunction(() => window.browserdLive.stats.connects > 1, null, { timeout: 30000 });
  const f = await rc.evaluate(() => window.browserdLive.stats.frames);
  await page.evaluate(() => { document.getElementById('marker').style.background = 'rgb(220,0,0)'; });
  await waitColour(rc, 120, 120, COLOURS.red, 'frames after the reconnect');
  assert.ok(await rc.evaluate((f) => window.browserdLive.stats.frames > f, f));
  await rc.close();
});

test('DevTools loads through browserd, attached to the page', { timeout: TEST_TIMEOUT }, async () => {
  const live = await debugURLs();
  const dt = await viewer.newPage({ viewport: { width: 1280, height: 800 } });
  const resp = await dt.goto(live.pages[0].debuggerUrl);
  assert.equal(resp.status(), 200);
  // The Elements panel shows the session page's DOM.
  await dt.locator('text=Click me').first().waitFor({ timeout: 30000 });
  await dt.screenshot({ path: path.join(ARTIFACTS, 'liveview-devtools.png') });
  await dt.close();
});

test('navbar=false, read-only and iframe embedding', { timeout: TEST_TIMEOUT }, async () => {
  const live = await debugURLs('?readOnly=true');
  const ro = await openViewer(live.debuggerFullscreenUrl + '&navbar=false');
  assert.equal(await ro.locator('#bar').isVisible(), false, 'navbar=false hides the bar');
  const clicks = await page.evaluate(() => window.clicks);
  const box = await page.locator('#btn').boundingBox();
  await clickAt(ro, box.x + box.width / 2, box.y + box.height / 2);
  await sleep(800);
  assert.equal(await page.evaluate(() => window.clicks), clicks, 'a read-only view does not click');
  const dt = await fetch(live.debuggerUrl);
  assert.equal(dt.status, 403, 'no DevTools on a read-only link');
  await ro.close();

  const rw = await debugURLs();
  const head = await fetch(rw.debuggerFullscreenUrl);
  assert.equal(head.headers.get('x-frame-options'), null, 'no X-Frame-Options');
  assert.match(head.headers.get('content-security-policy'), /frame-ancestors \*/);
  other = await serve((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>embedder</title><h3>Another site</h3>
<iframe id="lv" src="${rw.debuggerFullscreenUrl}&navbar=false" style="width:960px;height:560px;border:0"></iframe>`);
  });
  const host = await viewer.newPage({ viewport: { width: 1000, height: 700 } });
  await host.goto(other.url);
  const frame = host.frameLocator('#lv');
  await frame.locator('#screen').waitFor();
  // The iframe element exists before its document: wait for the frame to reach /view.
  const f = await waitFor(() => host.frames().find((fr) => fr.url().includes('/view')), { timeout: 30000, what: 'the live view frame' });
  await f.waitForFunction(() => window.browserdLive.stats.frames > 0, null, { timeout: 30000 });
  await host.screenshot({ path: path.join(ARTIFACTS, 'liveview-iframe.png') });
  await host.close();
});

test('altered and expired live view links are refused', { timeout: TEST_TIMEOUT }, async () => {
  const live = await debugURLs('?expiresIn=1');
  const u = new URL(live.debuggerFullscreenUrl);
  const tok = u.pathname.split('/')[2];
  const altered = live.debuggerFullscreenUrl.replace(tok, tok.slice(0, -1) + (tok.endsWith('A') ? 'B' : 'A'));
  assert.equal((await fetch(altered)).status, 401);
  await sleep(2100);
  const r = await fetch(live.debuggerFullscreenUrl);
  assert.equal(r.status, 401);
  assert.match((await r.json()).message, /expired/);
});

test('dashboard: sign in, see the running session, open it, release another', { timeout: TEST_TIMEOUT }, async () => {
  const extra = await sessions.create({ userMetadata: { purpose: 'dashboard-release' } });
  const d = await viewer.newPage({ viewport: { width: 1280, height: 1000 } });
  await d.goto(baseURL() + '/');
  await d.fill('#apiKey', 'not-a-key');
  await d.click('#signin');
  await d.locator('.error').waitFor();
  await d.fill('#apiKey', apiKey());
  await d.click('#signin');
  await d.locator(`tr[data-session="${session.id}"]`).waitFor();
  assert.ok(!d.url().includes(apiKey()), 'the key is not in the URL');
  const cookies = await d.context().cookies();
  const c = cookies.find((c) => c.name === 'browserd_signin');
  assert.ok(c && c.httpOnly, 'an HttpOnly sign-in cookie');
  assert.ok(!c.value.includes(apiKey()), 'the cookie does not carry the key');
  assert.match(await d.locator(`tr[data-session="${session.id}"] .status`).textContent(), /RUNNING/);
  await d.screenshot({ path: path.join(ARTIFACTS, 'dashboard-sessions.png') });

  await d.locator(`tr[data-session="${session.id}"] a`, { hasText: session.id }).click(); // not its "inspect" link
  await d.locator('#live').waitFor();
  const f = await waitFor(() => d.frames().find((fr) => fr.url().includes('/view')), { timeout: 30000, what: 'the live view frame' });
  await f.waitForFunction(() => window.browserdLive && window.browserdLive.stats.frames > 0, null, { timeout: 30000 });
  assert.ok(await d.locator('table.pages tr[data-page]').count() >= 1, 'pages listed');
  for (const name of ['Logs', 'Downloads']) assert.equal(await d.locator(`.links a:text("${name}")`).count(), 1, `${name} link`);
  await sleep(500);
  await d.screenshot({ path: path.join(ARTIFACTS, 'dashboard-session.png') });

  // Release from the dashboard (a form with its CSRF token).
  await d.goto(baseURL() + '/ui/sessions/' + extra.id);
  await d.click('#release');
  await d.locator('.status-COMPLETED').first().waitFor();
  assert.equal((await bb.sessions.retrieve(extra.id)).status, 'COMPLETED');
  // Without the token, the same post is refused.
  const forged = await d.evaluate(async (id) => (await fetch(`/ui/sessions/${id}/release`, { method: 'POST' })).status, session.id);
  assert.equal(forged, 403);
  assert.equal((await bb.sessions.retrieve(session.id)).status, 'RUNNING');

  await d.goto(baseURL() + '/?status=COMPLETED');
  assert.equal(await d.locator(`tr[data-session="${extra.id}"]`).count(), 1, 'the filter shows the released session');
  assert.equal(await d.locator(`tr[data-session="${session.id}"]`).count(), 0, 'and not the running one');
  await d.close();
});

test('a live view says when its session has ended; /debug is then 410', { timeout: TEST_TIMEOUT }, async () => {
  await bb.sessions.update(session.id, { status: 'REQUEST_RELEASE' });
  await vp.locator('#overlay', { hasText: 'The session has ended.' }).waitFor({ timeout: 30000 });
  const r = await fetch(`${baseURL()}/v1/sessions/${session.id}/debug`, { headers: { 'X-BB-API-Key': apiKey() } });
  assert.equal(r.status, 410);
});
