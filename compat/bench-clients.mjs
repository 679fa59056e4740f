// bench-clients.mjs times session lifecycles the way users run them: the official
// Browserbase SDK and playwright-core's connectOverCDP against a running browserd, and the
// same navigations on bare Chromium launched by Playwright. `browserd bench --phases clients`
// (internal/bench/bench_clients.go) starts the server, the pages and an upstream proxy, runs
// this script and reads its JSON; it is not a test and not meant to be run by hand.
//
//   node compat/bench-clients.mjs < config.json > result.json
//
// config (stdin, JSON): {baseURL, apiKey, projectId, metricsURL, metricsToken, poolSize,
//   pages: [firstURL, nextURL], proxy: "http://127.0.0.1:PORT", n, rounds, paceMs,
//   chrome: {path, args}, scenarios?: [names]}
// result (stdout, JSON): {clients: {node, playwright, sdk}, scenarios: [{name, runs: [{step: ms}],
//   cpu: [CPU-s per lifecycle of each back-to-back block]}], failures: [{scenario, step, error}]}
// Progress goes to stderr. A lifecycle that fails (as a user would see it fail) is recorded in
// failures and left out of runs; anything else exits non-zero after releasing what it created.
//
// One lifecycle (browserd): SDK sessions.create → chromium.connectOverCDP(connectUrl) →
// goto first URL on browser.contexts()[0].pages()[0] → goto next URL in the same tab →
// browser.close() → SDK sessions.update(REQUEST_RELEASE). Bare: chromium.launch →
// browser.newPage() → the same two gotos → browser.close().
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Browserbase from '@browserbasehq/sdk';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const log = (msg) => process.stderr.write(`bench-clients: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cfg = JSON.parse(fs.readFileSync(0, 'utf8'));
for (const k of ['baseURL', 'apiKey', 'projectId', 'metricsURL', 'metricsToken', 'pages', 'proxy', 'n', 'rounds', 'paceMs', 'chrome']) {
  if (cfg[k] === undefined) throw new Error(`config lacks ${k}`);
}
const [firstURL, nextURL] = cfg.pages;
const bb = new Browserbase({ apiKey: cfg.apiKey, baseURL: cfg.baseURL });
const projectId = cfg.projectId;

// scenarios in the order each round runs them. A back-to-back scenario is a block of n
// lifecycles without pauses; the paced scenarios run as one block, interleaved (one lifecycle
// of each in turn, paceMs apart), so that the load of the shared machine at that moment
// weighs on each alike and their ratios (recording on / off, context + proxy / plain create)
// stay fair. The bare browser runs right after the lifecycle it is compared with.
const all = [
  { name: 'defaults-b2b', paced: false, body: () => ({}) },
  { name: 'bare-b2b', paced: false, bare: true },
  { name: 'defaults-paced', paced: true, body: () => ({}) },
  { name: 'norec-paced', paced: true, body: () => ({ browserSettings: { recordSession: false } }) },
  { name: 'ctx-proxy-paced', paced: true, body: (c) => withContext(c, false) },
  { name: 'ctx-persist-proxy-paced', paced: true, body: (c) => withContext(c, true) },
  { name: 'norec-b2b', paced: false, body: () => ({ browserSettings: { recordSession: false } }) },
  { name: 'ctx-proxy-b2b', paced: false, body: (c) => withContext(c, false) },
];
const scenarios = cfg.scenarios ? all.filter((s) => cfg.scenarios.includes(s.name)) : all;

function withContext(contextId, persist) {
  return {
    browserSettings: { context: { id: contextId, persist } },
    proxies: [{ type: 'external', server: cfg.proxy }],
  };
}

// machineCPU is the CPU time the whole machine has spent so far, in seconds (/proc/stat:
// user, nice, system, irq, softirq and steal of every CPU, in USER_HZ ticks of 10 ms): the
// server, its browsers and their refills, this script, bare browsers, and anything else the
// machine runs.
function machineCPU() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

function version(pkg) {
  return JSON.parse(fs.readFileSync(path.join(here, 'node_modules', pkg, 'package.json'), 'utf8')).version;
}

// poolFull waits until the warm pool is full and launches nothing (as the Go phases do),
// so that every block starts from the same state: the default shelf is full, no shelf
// launches. A refill after a take may wait 500 ms while a shelf still has a browser, so the
// state must hold over 600 ms.
async function poolFull() {
  const deadline = Date.now() + 180_000;
  const full = async () => {
    const res = await fetch(cfg.metricsURL, { headers: { authorization: `Bearer ${cfg.metricsToken}` } });
    const text = await res.text();
    const value = (shelf, state) =>
      Number((text.match(new RegExp(`^browserd_pool_browsers\\{shelf="${shelf}",state="${state}"\\} (\\S+)$`, 'm')) || [])[1]);
    if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
    return value('default', 'ready') >= cfg.poolSize && value('default', 'launching') === 0 && value('keyed', 'launching') === 0;
  };
  for (;;) {
    if ((await full()) && (await sleep(600), await full())) return;
    if (Date.now() > deadline) throw new Error('warm pool not full after 180 s');
    await sleep(20);
  }
}

async function expectOK(resp, url) {
  if (resp?.status() !== 200) throw new Error(`goto ${url}: status ${resp?.status()}`);
}

// check reads what the page's script and image did; it runs outside the timed steps.
async function check(page) {
  try {
    const state = await page.evaluate(() => ({
      ready: document.body.dataset.ready,
      img: document.querySelector('img')?.naturalWidth,
    }));
    if (state.ready !== '1' || !(state.img > 0)) throw new Error(`page not complete: ${JSON.stringify(state)}`);
  } catch (e) {
    e.benchStep = 'check';
    throw e;
  }
}

// lifecycle and bareLifecycle fill run step by step; after a failure, the first step
// missing is the one that failed.
async function lifecycle(body, verify, run = {}) {
  let t = performance.now();
  const lap = (step) => {
    const now = performance.now();
    run[step] = now - t;
    t = now;
  };
  const s = await bb.sessions.create({ projectId, ...body });
  lap('create');
  try {
    const browser = await chromium.connectOverCDP(s.connectUrl);
    try {
      const page = browser.contexts()[0].pages()[0];
      lap('connect');
      await expectOK(await page.goto(firstURL), firstURL);
      lap('firstGoto');
      await expectOK(await page.goto(nextURL), nextURL);
      lap('nextGoto');
      if (verify) {
        await check(page);
        t = performance.now(); // the check is not timed
      }
      await browser.close(); // over CDP this disconnects; the session ends without keepAlive
      lap('close');
    } catch (e) {
      await browser.close().catch(() => {});
      throw e;
    }
    await bb.sessions.update(s.id, { projectId, status: 'REQUEST_RELEASE' });
    lap('release');
  } catch (e) {
    await bb.sessions.update(s.id, { projectId, status: 'REQUEST_RELEASE' }).catch(() => {});
    throw e;
  }
  run.total = run.create + run.connect + run.firstGoto + run.nextGoto + run.close + run.release;
  return run;
}

async function bareLifecycle(verify, run = {}) {
  let t = performance.now();
  const lap = (step) => {
    const now = performance.now();
    run[step] = now - t;
    t = now;
  };
  const browser = await chromium.launch({ executablePath: cfg.chrome.path, args: cfg.chrome.args, headless: true });
  lap('launch');
  try {
    const page = await browser.newPage();
    lap('newPage');
    await expectOK(await page.goto(firstURL), firstURL);
    lap('firstGoto');
    await expectOK(await page.goto(nextURL), nextURL);
    lap('nextGoto');
    if (verify) {
      await check(page);
      t = performance.now(); // the check is not timed
    }
    await browser.close();
    lap('close');
  } catch (e) {
    await browser.close().catch(() => {});
    throw e;
  }
  run.total = run.launch + run.newPage + run.firstGoto + run.nextGoto + run.close;
  return run;
}

const out = {
  clients: { node: process.version, playwright: version('playwright-core'), sdk: version('@browserbasehq/sdk') },
  scenarios: scenarios.map((s) => ({ name: s.name, runs: [], cpu: [] })),
  failures: [],
};
const steps = ['create', 'connect', 'firstGoto', 'nextGoto', 'close', 'release'];
const bareSteps = ['launch', 'newPage', 'firstGoto', 'nextGoto', 'close'];

// measure runs one lifecycle of s. A failed one (as a user would see it fail) is recorded
// with its step and first error line, and the bench goes on.
async function measure(s, verify) {
  const run = {};
  try {
    return s.bare ? await bareLifecycle(verify, run) : await lifecycle(s.body(contextId), verify, run);
  } catch (e) {
    const step = e?.benchStep ?? (s.bare ? bareSteps : steps).find((k) => !(k in run)) ?? 'unknown';
    const error = String(e?.message ?? e).split('\n')[0].slice(0, 300);
    out.failures.push({ scenario: s.name, step, error });
    log(`${s.name} failed at ${step}: ${error}`);
    return null;
  }
}
let contextId;
try {
  if (scenarios.some((s) => s.name.startsWith('ctx-'))) {
    contextId = (await bb.contexts.create({ projectId })).id;
  }
  const blocks = [];
  let paced;
  for (const [i, s] of scenarios.entries()) {
    if (!s.paced) blocks.push([i]);
    else if (paced) paced.push(i);
    else blocks.push((paced = [i]));
  }
  for (let round = 0; round < cfg.rounds; round++) {
    for (const block of blocks) {
      await poolFull();
      const cpu0 = machineCPU();
      for (let k = 0; k < cfg.n; k++) {
        for (const [j, i] of block.entries()) {
          const s = scenarios[i];
          const verify = k === 0; // once per block, outside the timed steps
          const run = await measure(s, verify);
          if (run) out.scenarios[i].runs.push(run);
          if (s.paced && (k < cfg.n - 1 || j < block.length - 1)) await sleep(cfg.paceMs);
        }
      }
      if (block.length === 1 && !scenarios[block[0]].paced) {
        // What a back-to-back lifecycle costs the machine, the refills of the browsers the
        // block took included: until the pool is full again.
        await poolFull();
        out.scenarios[block[0]].cpu.push((machineCPU() - cpu0) / cfg.n);
      }
      for (const i of block) {
        const last = out.scenarios[i].runs.slice(-cfg.n).map((r) => r.total).sort((a, b) => a - b);
        log(`round ${round + 1} ${scenarios[i].name}: lifecycle median ${last[Math.floor(last.length / 2)]?.toFixed(1)} ms`);
      }
    }
  }
} finally {
  if (contextId) {
    // A persist:true session writes the context back after it ended; a create on the same
    // context waits for that, so one more (untimed) session lets the delete come after it.
    if (scenarios.some((s) => s.name.includes('persist'))) {
      await lifecycle(withContext(contextId, false), false).catch((e) => log(`last context session: ${e}`));
    }
    await bb.contexts.delete(contextId).catch((e) => log(`delete context: ${e}`));
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
