// Session videos through the official SDK 2.21 (spec §3.10): sessions.replays.retrieve
// lists the recorded pages, replays.retrievePage returns a page's HLS playlist,
// sessions.recording.downloads.create/list make and list one MP4 per page, whose
// downloadUrl is fetched without the API key and read by ffprobe; and hls.js (pinned in
// package.json) plays the playlist in a real Chromium <video>: a browserd session's own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import puppeteer from 'puppeteer-core';
import Browserbase from '@browserbasehq/sdk';
import { client, Sessions, waitFor, sleep, apiKey, baseURL } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
const hlsJS = createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js');
let site;
let tmp;
let recorded; // { id, page } of the session the first test recorded

// The site: an animated page, and a player page that loads hls.js. Everything under
// /v1/ is relayed to browserd with the API key added and this server's Host kept, so
// that the playlist's absolute segment URLs (built on the request's Host, without
// --public-url) point back here: same origin for the player, no key in the page.
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'compat-replays-'));
  const api = new URL(baseURL());
  const srv = http.createServer(async (req, res) => {
    if (req.url.startsWith('/v1/')) {
      const up = http.request({ host: api.hostname, port: api.port, path: req.url, method: req.method,
        headers: { host: req.headers.host, 'x-bb-api-key': apiKey() } }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
      up.end();
      return;
    }
    if (req.url === '/hls.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(await fs.readFile(hlsJS));
      return;
    }
    if (req.url.startsWith('/player')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><html><head><title>player</title><script src="/hls.js"></script></head>
<body><video id="v" muted playsinline></video></body></html>`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><title>anim</title><style>
@keyframes m{from{margin-left:0}to{margin-left:300px}}#d{width:60px;height:60px;background:#06c;animation:m .8s infinite alternate}
</style></head><body><canvas id="c" width="400" height="120"></canvas><div id="d"></div><script>
const x=document.getElementById('c').getContext('2d');let i=0;
(function f(){x.fillStyle='hsl('+(i++%360)+',70%,50%)';x.fillRect(0,0,400,120);requestAnimationFrame(f)})();
</script></body></html>`);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  site = { url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(() => r()); }) };
});
after(async () => {
  await sessions.releaseAll();
  await site?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/** ffprobe returns the video codec and duration (seconds) of a file. */
async function ffprobe(file) {
  const { stdout } = await promisify(execFile)('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', file]);
  const p = JSON.parse(stdout);
  const video = p.streams.find((s) => s.codec_type === 'video');
  return { codec: video?.codec_name, duration: Number(p.format.duration) };
}

test('sdk: replays list the pages; recording downloads make an H.264 MP4 of the page', async () => {
  const s = await sessions.create({});
  const browser = await puppeteer.connect({ browserWSEndpoint: s.connectUrl, defaultViewport: null });
  const [page] = await browser.pages();
  await page.goto(`${site.url}/anim`, { waitUntil: 'load' });
  await sleep(4000);
  await browser.disconnect(); // without keepAlive: the session ends
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' }).catch(() => {});

  const replays = await waitFor(async () => {
    const r = await bb.sessions.replays.retrieve(s.id);
    return r.pageCount > 0 && r;
  }, { timeout: 30000, what: 'a recorded page' });
  assert.equal(replays.pageCount, replays.pages.length);
  const p0 = replays.pages[0];
  assert.equal(p0.pageId, '0');
  assert.equal(p0.url, `${baseURL()}/v1/sessions/${s.id}/replays/0`);
  const wall = (p0.endTimeMs - p0.startTimeMs) / 1000;
  assert.ok(wall >= 3 && wall < 60, `page 0 lasted ${wall} s`);
  recorded = { id: s.id, page: p0 };

  const res = await bb.sessions.replays.retrievePage(s.id, '0');
  assert.equal(res.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  const playlist = await res.text();
  assert.match(playlist, /^#EXTM3U\n/);
  assert.match(playlist, /#EXT-X-ENDLIST/);

  // Another project's key sees nothing of it.
  const other = new Browserbase({ apiKey: process.env.LIMITED_API_KEY, baseURL: baseURL(), maxRetries: 0 });
  await assert.rejects(other.sessions.replays.retrieve(s.id), (e) => e.status === 404);
  await assert.rejects(other.sessions.recording.downloads.create(s.id), (e) => e.status === 404);

  const created = await bb.sessions.recording.downloads.create(s.id);
  assert.ok(created.downloads.length >= 1);
  assert.ok(created.downloads.every((d) => d.status === 'PENDING' || d.status === 'COMPLETED'), JSON.stringify(created));
  const done = await waitFor(async () => {
    const l = await bb.sessions.recording.downloads.list(s.id);
    return l.downloads.every((d) => d.status === 'COMPLETED') && l;
  }, { timeout: 60000, interval: 250, what: 'the MP4s' });
  const d0 = done.downloads.find((d) => d.pageId === '0');
  assert.ok(d0.completedAt && d0.downloadUrl, JSON.stringify(d0));
  const mp4 = await fetch(d0.downloadUrl); // no API key: the URL is signed
  assert.equal(mp4.status, 200);
  const file = path.join(tmp, 'page0.mp4');
  await fs.writeFile(file, Buffer.from(await mp4.arrayBuffer()));
  const { codec, duration } = await ffprobe(file);
  assert.equal(codec, 'h264');
  assert.ok(Math.abs(duration - wall) <= 1, `MP4 lasts ${duration} s; page ${wall} s`);
});

test('hls.js plays a replay in a real Chromium <video>', async (t) => {
  if (!recorded) t.skip('no recorded session');
  const s = await sessions.create({ browserSettings: { recordSession: false } });
  const browser = await puppeteer.connect({ browserWSEndpoint: s.connectUrl, defaultViewport: null });
  try {
    const [page] = await browser.pages();
    await page.goto(`${site.url}/player`, { waitUntil: 'load' });
    const src = `/v1/sessions/${recorded.id}/replays/0`;
    const got = await page.evaluate(async (src) => {
      const v = document.getElementById('v');
      if (!window.Hls || !Hls.isSupported()) return { error: 'hls.js not supported (no MSE with H.264?)' };
      const hls = new Hls();
      const failed = new Promise((resolve) => hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) resolve({ error: `${d.type}: ${d.details}` }); }));
      hls.loadSource(src);
      hls.attachMedia(v);
      const played = new Promise((resolve) => {
        hls.on(Hls.Events.MANIFEST_PARSED, () => { v.play().catch((e) => resolve({ error: String(e) })); });
        v.addEventListener('timeupdate', () => {
          if (v.currentTime > 1) resolve({ currentTime: v.currentTime, duration: v.duration, width: v.videoWidth, height: v.videoHeight });
        });
      });
      return Promise.race([played, failed, new Promise((r) => setTimeout(() => r({ error: 'timed out', currentTime: v.currentTime }), 20000))]);
    }, src);
    assert.equal(got.error, undefined, JSON.stringify(got));
    const wall = (recorded.page.endTimeMs - recorded.page.startTimeMs) / 1000;
    assert.ok(Math.abs(got.duration - wall) <= 1, `the <video> lasts ${got.duration} s; page ${wall} s`);
    assert.ok(got.width > 0 && got.height > 0, JSON.stringify(got));
  } finally {
    await browser.disconnect();
  }
});
