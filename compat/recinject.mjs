// recinject.mjs: what a recorder bundle costs a page load by itself, without browserd. It launches
// Chromium (playwright-core, --no-sandbox: a measurement tool only), and for each round and each
// bundle (and "none") opens a fresh browser context (a fresh renderer), installs the bundle as
// browserd does (isolated world, binding, config line), loads a loopback page and reads its
// navigation timing: parse (response end → domInteractive, where the document-start script runs)
// and load (navigation start → load event end). Bundles alternate round by round.
//   node compat/recinject.mjs [-n 30] name=file.js ...
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { chromium } from 'playwright-core';
const args = process.argv.slice(2);
let n = 30;
const variants = [{ name: 'none', src: null }];
while (args.length) {
  const a = args.shift();
  if (a === '-n') n = Number(args.shift());
  else {
    const [name, file] = a.split('=');
    variants.push({ name, src: 'globalThis.browserdRecorderConfig = {"maxEventChars":1048576,"flushChars":524288,"maxTextChars":131072};\n' + fs.readFileSync(file, 'utf8') });
  }
}
const site = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(`<!doctype html><title>t</title><p>${req.url}</p><input type=password>`);
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${site.address().port}/`;
const browser = await chromium.launch({ executablePath: process.env.CHROME_PATH || '/usr/bin/chromium', args: ['--no-sandbox'] });
const res = Object.fromEntries(variants.map((v) => [v.name, { fparse: [], fload: [], nparse: [], nload: [], events: 0 }]));
for (let i = 0; i < n; i++) {
  for (const v of variants.map((_, k) => variants[(k + i) % variants.length])) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const s = await ctx.newCDPSession(page);
    if (v.src) {
      await s.send('Runtime.enable');
      await s.send('Page.enable');
      await s.send('Runtime.addBinding', { name: 'browserdRecord', executionContextName: '__browserd_recorder' });
      await s.send('Page.addScriptToEvaluateOnNewDocument', { source: v.src, worldName: '__browserd_recorder' });
      s.on('Runtime.bindingCalled', () => res[v.name].events++);
    }
    for (let k = 0; k < 2; k++) {
      await page.goto(url + `${v.name}-${i}-${k}`);
      const e = await page.evaluate(() => performance.getEntriesByType('navigation')[0].toJSON());
      res[v.name][k ? 'nparse' : 'fparse'].push(e.domInteractive - e.responseEnd);
      res[v.name][k ? 'nload' : 'fload'].push(e.loadEventEnd - e.startTime);
    }
    await ctx.close();
  }
}
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const f = (x) => x.toFixed(1).padStart(7);
console.log(`${n} rounds, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('variant       bytes  first parse p50 p90  load p50 p90 | next parse p50 p90  load p50 p90  events');
for (const v of variants) {
  const r = res[v.name];
  console.log(`${v.name.padEnd(10)} ${String(v.src?.length ?? 0).padStart(7)} ${f(pct(r.fparse, 50))}${f(pct(r.fparse, 90))}${f(pct(r.fload, 50))}${f(pct(r.fload, 90))} | ${f(pct(r.nparse, 50))}${f(pct(r.nparse, 90))}${f(pct(r.nload, 50))}${f(pct(r.nload, 90))}  ${r.events}`);
}
await browser.close();
site.close();
