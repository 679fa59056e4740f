// latency.mjs measures what a user of the official clients sees: the Browserbase SDK and
// playwright-core against a browserd it starts itself, N back-to-back runs of
//   create (SDK) → connectOverCDP (playwright) → goto a loopback page → close → release (SDK),
// printing p50/p90 per step and for the whole run. Not part of the compat suite.
//
//   node compat/latency.mjs <browserd binary> [-n 20] [serve flags...]
//   node compat/latency.mjs bin/browserd -n 20 --allow-private-networks
//
// Environment: CHROME_PATH (default /usr/bin/chromium), TMPDIR for the data dir.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Browserbase from '@browserbasehq/sdk';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
if (args.length < 1) {
  console.error('usage: node latency.mjs <browserd binary> [-n N] [serve flags...]');
  process.exit(2);
}
const bin = path.resolve(args.shift());
let n = 20;
if (args[0] === '-n') {
  args.shift();
  n = Number(args.shift());
}
const serveFlags = args;

const freePort = () =>
  new Promise((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

// The page every run loads: a small HTML document on loopback.
const site = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(`<!doctype html><title>latency</title><p id="path">${req.url}</p>`);
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const siteURL = `http://127.0.0.1:${site.address().port}/`;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'browserd-latency-'));
fs.chmodSync(dataDir, 0o711); // the sandboxed browsers' uids traverse it
const port = await freePort();
const apiKey = `bb_latency_${crypto.randomBytes(24).toString('hex')}`;
const baseURL = `http://127.0.0.1:${port}`;
const log = fs.openSync(path.join(dataDir, 'server.log'), 'a');
const server = spawn(bin, ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, ...serveFlags], {
  env: { ...process.env, BROWSERD_API_KEY: apiKey, BROWSERD_CHROME: process.env.CHROME_PATH || '/usr/bin/chromium' },
  stdio: ['ignore', log, log],
});
let exited = false;
server.on('exit', () => (exited = true));

async function stop() {
  if (!exited) {
    server.kill('SIGTERM');
    for (let i = 0; i < 400 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
  }
  site.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

try {
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`server exited; log: ${fs.readFileSync(path.join(dataDir, 'server.log'), 'utf8')}`);
    const ok = await fetch(`${baseURL}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 300) throw new Error('server not healthy within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  // Ready means the warm pool is filled, so the first create is a warm one as well.
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${baseURL}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 3000));

  const bb = new Browserbase({ apiKey, baseURL });
  const projectId = (await bb.projects.list())[0].id;
  const steps = ['create', 'connect', 'goto', 'close', 'release', 'total'];
  const times = Object.fromEntries(steps.map((s) => [s, []]));
  for (let i = 0; i < n; i++) {
    const t = [performance.now()];
    const s = await bb.sessions.create({ projectId });
    t.push(performance.now());
    const browser = await chromium.connectOverCDP(s.connectUrl);
    const page = browser.contexts()[0].pages()[0];
    t.push(performance.now());
    const resp = await page.goto(siteURL + `run-${i}`, { waitUntil: 'load' });
    if (resp?.status() !== 200) throw new Error(`goto: status ${resp?.status()}`);
    t.push(performance.now());
    await browser.close(); // over CDP: disconnects
    t.push(performance.now());
    await bb.sessions.update(s.id, { projectId, status: 'REQUEST_RELEASE' });
    t.push(performance.now());
    for (let k = 0; k < 5; k++) times[steps[k]].push(t[k + 1] - t[k]);
    times.total.push(t[5] - t[0]);
  }
  const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
  };
  console.log(`${path.basename(bin)} ${serveFlags.join(' ')}: ${n} runs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log('step     p50 ms   p90 ms');
  for (const s of steps) {
    console.log(`${s.padEnd(8)} ${pct(times[s], 50).toFixed(1).padStart(7)} ${pct(times[s], 90).toFixed(1).padStart(8)}`);
  }
  console.log(JSON.stringify(times));
} finally {
  await stop();
}
