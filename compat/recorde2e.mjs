// recorde2e.mjs: one recorded session through the official clients (SDK + playwright-core over CDP):
// goto, setContent, fill a text and a password field, scroll; then the recording must hold the goto's
// page, the setContent page and the typed text, and not the password. Not part of the compat suite.
//   node compat/recorde2e.mjs bin/browserd
import { spawn } from 'node:child_process';
import fs from 'node:fs'; import os from 'node:os'; import path from 'node:path'; import http from 'node:http';
import Browserbase from '@browserbasehq/sdk';
import { chromium } from 'playwright-core';
const site = http.createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/html' }); r.end('<!doctype html><p>goto-mark</p>'); });
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-')); fs.chmodSync(dataDir, 0o711);
const apiKey = 'bb_e2e_' + (await import('node:crypto')).randomBytes(24).toString('hex'); const port = 18000 + Math.floor(Math.random() * 1000);
const srv = spawn(path.resolve(process.argv[2] || 'bin/browserd'), ['serve', '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--allow-private-networks', '--pool-size', '1'], { env: { ...process.env, BROWSERD_API_KEY: apiKey }, stdio: ['ignore', 'inherit', 'inherit'] });
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 600; i++) { if (await fetch(base + '/readyz').then((r) => r.ok, () => false)) break; await new Promise((r) => setTimeout(r, 100)); }
if (srv.exitCode !== null) throw new Error('server exited');
const bb = new Browserbase({ apiKey, baseURL: base }); const projectId = (await bb.projects.list())[0].id;
const s = await bb.sessions.create({ projectId });
const b = await chromium.connectOverCDP(s.connectUrl); const page = b.contexts()[0].pages()[0];
await page.goto(`http://127.0.0.1:${site.address().port}/`);
await page.setContent('<p>setcontent-mark</p><input type=password id=pw><input id=t>');
await page.fill('#pw', 'hunter2-secret'); await page.fill('#t', 'typed-mark');
await page.mouse.wheel(0, 100); await page.waitForTimeout(1500);
await b.close(); await bb.sessions.update(s.id, { projectId, status: 'REQUEST_RELEASE' });
await new Promise((r) => setTimeout(r, 3000));
const rec = await fetch(`${base}/v1/sessions/${s.id}/recording`, { headers: { 'X-BB-API-Key': apiKey } }).then((r) => r.text());
for (const m of ['goto-mark', 'setcontent-mark', 'typed-mark', 'hunter2-secret']) console.log(m, rec.includes(m));
console.log('bytes', rec.length, 'types', [...new Set(JSON.parse(rec).map((e) => e.type))]);
srv.kill('SIGTERM'); site.close(); await new Promise((r) => setTimeout(r, 2000)); fs.rmSync(dataDir, { recursive: true, force: true });
