// recperf.mjs measures what recording costs a navigation, as a user of the official
// clients sees it: the Browserbase SDK creates sessions with browserSettings.recordSession
// true or false, playwright-core connects over CDP and runs page.goto to a loopback page
// (the first goto of the session, then NEXT more), interleaving the variants run by run
// so that the machine's load falls on all of them alike. Not part of the compat suite.
//
//   node compat/recperf.mjs <browserd binary> [-n 10] [--next 3] [--site small|bench] [--b2b]
//        [--variant name:rec[:ENV=V,...[:binary]]]... [serve flags...]
//
// --site bench serves the pages of `browserd bench --phases clients` (a form with a password,
// a script that builds a 100-item list, an image; internal/bench/bench_clients_site.go)
// instead of a <p> and a password field. --b2b runs the gotos of a session back to back, as
// the bench does: the next goto starts as soon as the previous one returned (at the load
// event), so only the last goto's phases are read (reading them in between would give the
// page time to finish what it does after load).
//
// A variant is a name, recordSession (1/0), and the environment and binary of its
// browserd server (one server per variant). Without --variant: on:1 and off:0. It prints
// p50/p90 of the goto times and the p50 and mean of their phases from the page's
// navigation timing (dispatch: goto to navigation start; network; parse: response end
// to domInteractive; toload; loadev: the load event's handlers; report: load event end
// to goto's return; inject: the recorder script's run at document start, when the
// server marks it (compat/recperf-experiments.patch)).
// Environment: CHROME_PATH (default /usr/bin/chromium), TMPDIR for the data dirs.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import Browserbase from '@browserbasehq/sdk';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const bin = path.resolve(args.shift());
let n = 10;
let next = 3;
let siteKind = 'small';
let b2b = false;
const variants = [];
const serveFlags = [];
while (args.length) {
  const a = args.shift();
  if (a === '-n') n = Number(args.shift());
  else if (a === '--next') next = Number(args.shift());
  else if (a === '--site') siteKind = args.shift();
  else if (a === '--b2b') b2b = true;
  else if (a === '--variant') {
    const [name, rec, env = '', vbin = ''] = args.shift().split(':');
    variants.push({ name, rec: rec === '1', env, bin: vbin ? path.resolve(vbin) : bin });
  } else serveFlags.push(a);
}
if (variants.length === 0) variants.push({ name: 'on', rec: true, env: '', bin }, { name: 'off', rec: false, env: '', bin });
// Every variant has a server of its own: variants sharing one also share its warm pool and
// its refill launches (a launch is ≈0.4 CPU-s), which favoured or hurt them unevenly
// (docs/RECORDING-PERF.md, run 9).
const key = (v) => v.name;

const freePort = () =>
  new Promise((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

// The bench's pages (internal/bench/bench_clients_site.go), its PNG made the same way.
const benchPage = (name) => `<!doctype html><html><head><meta charset="utf-8"><title>bench ${name}</title>
<style>body{font:16px sans-serif;margin:2em}li{margin:2px 0}</style></head>
<body><h1>browserd bench: ${name}</h1>
<p>A small page with a form, an image and a script, as a login page has.</p>
<form><label>user <input name="user" value="alice"></label>
<label>password <input name="pw" type="password" value="secret"></label><button type="button">sign in</button></form>
<img src="/site/img.png" width="64" height="64" alt="logo">
<ul id="list"></ul>
<script src="/site/app.js"></script>
</body></html>`;
const benchScript = `(function () {
  const ul = document.getElementById('list');
  for (let i = 0; i < 100; i++) {
    const li = document.createElement('li');
    li.textContent = 'item ' + i + ' of ' + location.pathname;
    ul.appendChild(li);
  }
  document.body.dataset.ready = '1';
})();
`;
// The bench's 64×64 gradient PNG (R = 4x, G = 4y, B = 128), encoded here.
const benchPNG = (() => {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
    return n >>> 0;
  });
  const crc = (b) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(64, 0);
  ihdr.writeUInt32BE(64, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA
  const raw = Buffer.alloc(64 * (1 + 64 * 4));
  for (let y = 0; y < 64; y++) {
    for (let x = 0; x < 64; x++) raw.set([4 * x, 4 * y, 128, 255], y * (1 + 256) + 1 + x * 4);
  }
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
})();
const site = http.createServer((req, res) => {
  const noStore = { 'cache-control': 'no-store' };
  if (siteKind === 'bench' && req.url === '/site/app.js') {
    res.writeHead(200, { 'content-type': 'text/javascript', ...noStore });
    return res.end(benchScript);
  }
  if (siteKind === 'bench' && req.url === '/site/img.png') {
    res.writeHead(200, { 'content-type': 'image/png', ...noStore });
    return res.end(benchPNG);
  }
  if (siteKind === 'bench') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', ...noStore });
    return res.end(benchPage(req.url.slice(1)));
  }
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(`<!doctype html><title>latency</title><p id="path">${req.url}</p><input type="password" id="pw">`);
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const siteURL = `http://127.0.0.1:${site.address().port}/`;

const servers = new Map(); // env → {baseURL, apiKey, proc, dataDir, bb, projectId}
async function startServer(bin, env) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-recperf-'));
  fs.chmodSync(dataDir, 0o711);
  const port = await freePort();
  const apiKey = `bb_recperf_${crypto.randomBytes(24).toString('hex')}`;
  const baseURL = `http://127.0.0.1:${port}`;
  const log = fs.openSync(path.join(dataDir, 'server.log'), 'a');
  const extra = Object.fromEntries(env.split(',').filter(Boolean).map((kv) => kv.split('=')));
  const proc = spawn(bin, ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, ...serveFlags], {
    env: { ...process.env, ...extra, BROWSERD_API_KEY: apiKey, BROWSERD_CHROME: process.env.CHROME_PATH || '/usr/bin/chromium' },
    stdio: ['ignore', log, log],
  });
  const s = { baseURL, apiKey, proc, dataDir, exited: false };
  proc.on('exit', () => (s.exited = true));
  for (let i = 0; ; i++) {
    if (s.exited) throw new Error(`server exited; log: ${fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8')}`);
    if (await fetch(`${baseURL}/readyz`).then((r) => r.ok, () => false)) break;
    if (i > 600) throw new Error('server not ready within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  s.bb = new Browserbase({ apiKey, baseURL });
  s.projectId = (await s.bb.projects.list())[0].id;
  return s;
}
async function stopAll() {
  for (const s of servers.values()) {
    if (!s.exited) {
      s.proc.kill('SIGTERM');
      for (let i = 0; i < 400 && !s.exited; i++) await new Promise((r) => setTimeout(r, 100));
    }
    if (!process.env.KEEP) fs.rmSync(s.dataDir, { recursive: true, force: true });
    else console.log('kept', s.dataDir);
  }
  site.close();
}

const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

try {
  for (const v of variants) if (!servers.has(key(v))) servers.set(key(v), await startServer(v.bin, v.env));
  await new Promise((r) => setTimeout(r, 3000));
  const phases = ['dispatch', 'network', 'parse', 'toload', 'loadev', 'report', 'inject', 'rrstart', 'pstart', 'psnap', 'povl', 'plag', 'pload'];
  const times = Object.fromEntries(variants.map((v) => [v.name, { first: [], next: [], ...Object.fromEntries(phases.flatMap((p) => [['f_' + p, []], ['n_' + p, []]])) }]));
  for (let i = 0; i < n; i++) {
    // Rotate the order each round so no variant always runs right after another.
    const order = variants.map((_, k) => variants[(k + i) % variants.length]);
    for (const v of order) {
      const s = servers.get(key(v));
      const sess = await s.bb.sessions.create({ projectId: s.projectId, browserSettings: { recordSession: v.rec } });
      const browser = await chromium.connectOverCDP(sess.connectUrl);
      const page = browser.contexts()[0].pages()[0];
      for (let k = 0; k <= next; k++) {
        const w0 = Date.now();
        const t0 = performance.now();
        const resp = await page.goto(siteURL + `${v.name}-${i}-${k}`, { waitUntil: 'load' });
        const dt = performance.now() - t0;
        const w1 = w0 + dt;
        if (resp?.status() !== 200) throw new Error(`goto: status ${resp?.status()}`);
        (k === 0 ? times[v.name].first : times[v.name].next).push(dt);
        if (b2b && k < next) continue; // the next goto starts at once, as in the bench
        // Where the time went, from the page's navigation timing (wall clock, same machine).
        const prevPath = k > 0 ? `/${v.name}-${i}-${k - 1}` : '';
        const nt = await page.evaluate((prevPath) => {
          const e = performance.getEntriesByType('navigation')[0].toJSON();
          const m = (n) => performance.getEntriesByName(n)[0]?.startTime ?? 0;
          const st = performance.getEntriesByName('rrstart');
          // What an experiment bundle's recorder wrote about the previous page's start.
          const prev = JSON.parse(sessionStorage.getItem('recperf:' + prevPath) || 'null');
          return { o: performance.timeOrigin, inject: m('rec1') - m('rec0'), rrstart: st.length ? st[st.length - 1].duration : 0, prev, ...e };
        }, prevPath);
        const at = (x) => nt.o + x;
        const ph = {
          dispatch: at(nt.startTime) - w0,
          network: nt.responseEnd - nt.startTime,
          parse: nt.domInteractive - nt.responseEnd,
          toload: nt.loadEventStart - nt.domInteractive,
          loadev: nt.loadEventEnd - nt.loadEventStart,
          report: w1 - at(nt.loadEventEnd),
          inject: nt.inject,
          rrstart: nt.rrstart,
          // the previous page's rrweb start (experiment bundle): its length, the full
          // snapshot's part, and how long it still ran after this goto was called
          pstart: nt.prev ? nt.prev.s1 - nt.prev.s0 : 0,
          psnap: nt.prev ? nt.prev.snap - nt.prev.s0 : 0,
          povl: nt.prev ? nt.prev.s1 - w0 : 0,
          plag: nt.prev ? nt.prev.s0 - nt.prev.load : 0, // its load event end → its start
          pload: nt.prev ? nt.prev.load - w0 : 0, // its load event end, from this goto's call
        };
        for (const p of phases) times[v.name][(k === 0 ? 'f_' : 'n_') + p].push(ph[p]);
      }
      await browser.close();
      await s.bb.sessions.update(sess.id, { projectId: s.projectId, status: 'REQUEST_RELEASE' });
    }
  }
  console.log(`${n} rounds, ${next} next gotos, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log('variant      first p50  p90   next p50  p90');
  for (const v of variants) {
    const t = times[v.name];
    const f = (x) => x.toFixed(0).padStart(5);
    console.log(`${v.name.padEnd(12)} ${f(pct(t.first, 50))} ${f(pct(t.first, 90))}   ${f(pct(t.next, 50))} ${f(pct(t.next, 90))}`);
  }
  console.log('phase p50 (first | next): ' + phases.join(' '));
  for (const v of variants) {
    const t = times[v.name];
    const f = (x) => x.toFixed(0).padStart(5);
    console.log(`${v.name.padEnd(12)} ${phases.map((p) => f(pct(t['f_' + p], 50))).join('')}  | ${phases.map((p) => f(pct(t['n_' + p], 50))).join('')}`);
  }
  console.log('phase mean (first | next): ' + phases.join(' '));
  const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  for (const v of variants) {
    const t = times[v.name];
    const f = (x) => x.toFixed(0).padStart(5);
    console.log(`${v.name.padEnd(12)} ${phases.map((p) => f(mean(t['f_' + p]))).join('')}  | ${phases.map((p) => f(mean(t['n_' + p]))).join('')}   total ${f(mean(t.first))} | ${f(mean(t.next))}`);
  }
  if (process.env.RAW) console.log(JSON.stringify(times));
} finally {
  await stopAll();
}
