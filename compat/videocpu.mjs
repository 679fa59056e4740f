// videocpu.mjs measures what session videos cost (issue 19, docs/PERFORMANCE.md): CPU of
// browserd and every process under it (the sandboxed Chromium of each session, ffmpeg)
// per session-minute, for an idle page and for a page that animates without pause, with
// the live screencast on (--video) and off (--video=false), and the encode of the MP4
// after the session (ffmpeg's own CPU, from the server's "encoded page video" log line).
// One server per mode, runs alternated on/off. Not part of the compat suite.
//
//   node compat/videocpu.mjs <browserd binary> [-n 3] [-s 30] [serve flags...]
//
// CPU is read from /proc/<pid>/stat (utime+stime of the live processes under the server,
// plus the cutime+cstime of those that reaped children), over -s seconds of a session
// whose page is loaded, scaled to a minute. Environment: CHROME_PATH, TMPDIR.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Browserbase from '@browserbasehq/sdk';
import puppeteer from 'puppeteer-core';

const args = process.argv.slice(2);
const bin = path.resolve(args.shift());
let n = 3;
let secs = 30;
while (args[0] === '-n' || args[0] === '-s') {
  const f = args.shift();
  const v = Number(args.shift());
  if (f === '-n') n = v;
  else secs = v;
}
const serveFlags = args;
const TICK = 100; // USER_HZ on Linux

const site = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  if (req.url.startsWith('/anim')) {
    res.end(`<!doctype html><title>anim</title><style>@keyframes m{from{margin-left:0}to{margin-left:600px}}
#d{width:120px;height:120px;background:#c00;animation:m 1s infinite alternate}</style>
<canvas id=c width=1200 height=300></canvas><div id=d></div><script>const x=c.getContext('2d');let i=0;
(function f(){x.fillStyle='hsl('+(i++%360)+',80%,50%)';x.fillRect(0,0,1200,300);x.fillStyle='#fff';x.font='40px sans-serif';x.fillText(Date.now(),20,60);requestAnimationFrame(f)})()</script>`);
  } else {
    res.end(`<!doctype html><title>idle</title><h1>An idle page</h1><p>${'Nothing moves here. '.repeat(50)}</p>`);
  }
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const siteURL = `http://127.0.0.1:${site.address().port}`;

/** ticks returns the CPU ticks of pid and every process under it. */
function ticks(root) {
  const procs = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    procs.set(Number(d), { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) });
  }
  let sum = 0;
  for (const [pid, p] of procs) {
    for (let q = pid, hops = 0; q && hops < 64; q = procs.get(q)?.ppid, hops++) {
      if (q === root) { sum += p.own + p.reaped; break; }
    }
  }
  return sum;
}

async function startServer(video) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-videocpu-'));
  fs.chmodSync(dataDir, 0o711);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const apiKey = `bb_videocpu_${crypto.randomBytes(16).toString('hex')}`;
  const logFile = path.join(dataDir, 'server.log');
  const log = fs.openSync(logFile, 'a');
  const proc = spawn(bin, ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--pool-size', '0',
    '--allow-private-networks', `--video=${video}`, ...serveFlags], {
    env: { ...process.env, BROWSERD_API_KEY: apiKey, BROWSERD_CHROME: process.env.CHROME_PATH || '/usr/bin/chromium' },
    stdio: ['ignore', log, log],
  });
  const baseURL = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (await fetch(`${baseURL}/healthz`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error('server not healthy');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, dataDir, logFile, bb: new Browserbase({ apiKey, baseURL }),
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      fs.rmSync(dataDir, { recursive: true, force: true });
    } };
}

async function one(srv, page) {
  const s = await srv.bb.sessions.create({ keepAlive: true });
  const browser = await puppeteer.connect({ browserWSEndpoint: s.connectUrl, defaultViewport: null });
  const [p] = await browser.pages();
  await p.goto(`${siteURL}/${page}`, { waitUntil: 'load' });
  await new Promise((r) => setTimeout(r, 2000));
  const t0 = ticks(srv.proc.pid);
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, secs * 1000));
  const cpu = ((ticks(srv.proc.pid) - t0) / TICK) / ((Date.now() - w0) / 60000); // s per minute
  await browser.disconnect();
  await srv.bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  let encode = null;
  let bytes = null;
  if (srv.video) {
    // The first page's MP4: its ffmpeg CPU is in the log line.
    for (let i = 0; i < 300; i++) {
      const r = await srv.bb.sessions.replays.retrieve(s.id);
      if (r.pageCount > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await srv.bb.sessions.recording.downloads.create(s.id);
    for (let i = 0; i < 1200; i++) {
      const l = await srv.bb.sessions.recording.downloads.list(s.id);
      if (l.downloads.every((d) => d.status !== 'PENDING')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const lines = fs.readFileSync(srv.logFile, 'utf8').split('\n').filter((l) => l.includes('encoded page video') && l.includes(s.id));
    const m = lines.map((l) => [/ cpu=(\S+)/.exec(l)?.[1], / video=(\S+)/.exec(l)?.[1]]);
    encode = m.map(([c, v]) => `${c}/${v}`).join(',');
    const dir = path.join(srv.dataDir, 'blobs', 'sessions', s.id, 'replays');
    bytes = 0;
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { if (e.isDirectory()) walk(path.join(d, e.name)); else if (d.endsWith('/f')) bytes += fs.statSync(path.join(d, e.name)).size; } };
    try { walk(dir); } catch {}
  }
  return { cpu, encode, bytes };
}

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const results = {};
const on = await startServer(true); on.video = true;
const off = await startServer(false); off.video = false;
try {
  for (let i = 0; i < n; i++) {
    for (const page of ['idle', 'anim']) {
      for (const srv of [on, off]) {
        const r = await one(srv, page);
        const key = `${page} video=${srv.video}`;
        (results[key] ||= []).push(r);
        console.log(`${key} run ${i + 1}: ${r.cpu.toFixed(2)} CPU-s/min${r.encode ? `, encode cpu/video ${r.encode}, frames ${(r.bytes / 1024).toFixed(0)} KiB` : ''} (load ${os.loadavg()[0].toFixed(2)})`);
      }
    }
  }
  for (const [k, rs] of Object.entries(results)) {
    const c = rs.map((r) => r.cpu);
    console.log(`${k}: p50 ${q(c, 0.5).toFixed(2)} p90 ${q(c, 0.9).toFixed(2)} CPU-s per session-minute (n=${c.length})`);
  }
} finally {
  await on.stop();
  await off.stop();
  site.close();
}
