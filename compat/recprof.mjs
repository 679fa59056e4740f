// recprof.mjs: a CPU profile of the recorder in the page. It launches Chromium itself (playwright-core,
// --no-sandbox: a measurement tool only), installs a recorder bundle as browserd does (isolated world,
// binding), navigates 10 times under Profiler and prints the top self times. Build an unminified bundle:
//   (cd scripts/rrweb && ./node_modules/.bin/esbuild entry.js --bundle --format=iife --outfile=/tmp/rec-dev.js)
//   node compat/recprof.mjs /tmp/rec-dev.js
import fs from 'node:fs';
import http from 'node:http';
import { chromium } from 'playwright-core';
const src = 'globalThis.browserdRecorderConfig = {"maxEventChars":1048576,"flushChars":524288,"maxTextChars":131072};\n' + fs.readFileSync(process.argv[2], 'utf8');
const site = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(`<!doctype html><title>t</title><p>${req.url}</p><input type=password>`); });
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${site.address().port}/`;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage();
const s = await page.context().newCDPSession(page);
await s.send('Runtime.enable'); await s.send('Page.enable');
await s.send('Runtime.addBinding', { name: 'browserdRecord', executionContextName: '__browserd_recorder' });
await s.send('Page.addScriptToEvaluateOnNewDocument', { source: src, worldName: '__browserd_recorder' });
let events = 0; s.on('Runtime.bindingCalled', () => events++);
await page.goto(url + 'warm'); await page.waitForTimeout(300);
await s.send('Profiler.enable'); await s.send('Profiler.setSamplingInterval', { interval: 50 });
await s.send('Profiler.start');
for (let i = 0; i < 10; i++) { await page.goto(url + i); await page.waitForTimeout(200); }
const { profile } = await s.send('Profiler.stop');
const self = new Map(); const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const dt = profile.timeDeltas; const counts = new Map();
profile.samples.forEach((id, i) => counts.set(id, (counts.get(id) || 0) + (dt[i] || 0)));
for (const [id, us] of counts) { const n = byId.get(id); const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.slice(-30)}:${n.callFrame.lineNumber}`; self.set(k, (self.get(k) || 0) + us); }
const tot = [...self.values()].reduce((a, b) => a + b, 0);
console.log('events', events, 'total sampled ms', (tot / 1000).toFixed(0));
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((us / 1000).toFixed(1).padStart(8), k);
await browser.close(); site.close();
