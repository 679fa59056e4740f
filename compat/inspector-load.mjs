// Opens one session's inspector in real Chromium (playwright-core) and checks it with
// the browser-event checks on (inspector.mjs); prints the timings as one JSON line.
// Run by TestInspectorBrowser (internal/server), which seeds the session's events
// through the store: INSPECTOR_BASE, INSPECTOR_KEY, INSPECTOR_SESSION, INSPECTOR_SHOTS,
// INSPECTOR_PREFIX, and INSPECTOR_RUNS (more opens, measured only).
import { chromium } from 'playwright-core';
import { signIn, checkInspector, measureInspector } from './inspector.mjs';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const browser = await chromium.launch({ executablePath: process.env.CHROME_PATH || '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  await signIn(page, env('INSPECTOR_BASE'), env('INSPECTOR_KEY'));
  const r = await checkInspector(page, {
    base: env('INSPECTOR_BASE'), sessionID: env('INSPECTOR_SESSION'), events: true, marks: true,
    failingURL: '/asset/4.png', failure: /net::ERR_CONNECTION_REFUSED/, consoleText: 'console 0',
    commandFilter: 'Runtime.evaluate', shots: env('INSPECTOR_SHOTS'), prefix: env('INSPECTOR_PREFIX'),
  });
  console.log('INSPECTOR_TIMINGS ' + JSON.stringify(r));
  // INSPECTOR_RUNS more opens, measured only (docs/PERFORMANCE.md): p50 and p90 of each.
  const runs = [];
  for (let i = 0; i < Number(process.env.INSPECTOR_RUNS || 0); i++) {
    runs.push(await measureInspector(page, { base: env('INSPECTOR_BASE'), sessionID: env('INSPECTOR_SESSION') }));
  }
  if (runs.length) {
    const q = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
    const out = {};
    for (const k of Object.keys(runs[0])) out[k] = { p50: q(runs.map((r) => r[k]), 0.5), p90: q(runs.map((r) => r[k]), 0.9) };
    console.log('INSPECTOR_RUNS ' + runs.length + ' ' + JSON.stringify(out));
  }
} finally {
  await browser.close();
}
