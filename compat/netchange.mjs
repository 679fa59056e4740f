// Counts first navigations of fresh sessions that Chromium cuts with
// net::ERR_NETWORK_CHANGED (docs/PERFORMANCE.md, "ERR_NETWORK_CHANGED"). Each round
// creates a session, connects Playwright over CDP and at once navigates to a page of a
// local HTTP server that answers after DELAY_MS (0: at once; a delay keeps the request
// in flight through the browser's first seconds), then releases the session.
//
//   BROWSERBASE_BASE_URL=http://127.0.0.1:PORT BROWSERBASE_API_KEY=… \
//     node compat/netchange.mjs [N=100] [DELAY_MS=0] [http|tls]
//
// The server needs --allow-private-networks (the page is on 127.0.0.1); --pool-size 0
// makes every session a fresh launch. BROWSERBASE_BASE_URL may list several servers,
// comma-separated (an A/B comparison under the same load): the rounds alternate
// between them, N rounds each, and the counts are per server.
import http from 'node:http';
import net from 'node:net';
import { chromium } from 'playwright-core';
import Browserbase from '@browserbasehq/sdk';
import { apiKey, baseURL } from './tests/helpers.mjs';

const n = Number(process.argv[2] ?? 100);
const delay = Number(process.argv[3] ?? 0);
const mode = process.argv[4] ?? 'http';
// http: a page that answers after delay. tls: an https URL whose server closes the
// connection delay ms after accepting it, without a TLS handshake, so that Chromium's
// connection attempt (proxy tunnel + TLS handshake, the phase a network change aborts)
// lasts that long; without a change it ends in ERR_CONNECTION_CLOSED.
const srv = mode === 'tls'
  ? net.createServer((c) => { c.on('error', () => {}); setTimeout(() => c.destroy(), delay); })
  : http.createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>ok</title>');
    }, delay);
  });
await new Promise((r) => srv.listen(0, '127.0.0.1', r));
const url = `${mode === 'tls' ? 'https' : 'http'}://127.0.0.1:${srv.address().port}/`;
const servers = baseURL().split(',').map((u) => ({ url: u, bb: new Browserbase({ apiKey: apiKey(), baseURL: u }), counts: {} }));
for (let i = 0; i < n * servers.length; i++) {
  const { url: server, bb, counts } = servers[i % servers.length];
  const t0 = Date.now();
  const s = await bb.sessions.create({});
  const t1 = Date.now();
  let outcome = 'ok';
  let t2 = t1;
  try {
    const browser = await chromium.connectOverCDP(s.connectUrl);
    const page = browser.contexts()[0].pages()[0];
    t2 = Date.now();
    await page.goto(url).then(() => {}, (e) => { outcome = (/net::ERR_[A-Z_]+/.exec(e.message) ?? [e.message.split('\n')[0]])[0]; });
    await browser.close();
  } catch (e) {
    outcome = `connect: ${e.message.split('\n')[0]}`;
  } finally {
    await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' }).catch(() => {});
  }
  counts[outcome] = (counts[outcome] ?? 0) + 1;
  console.log(`${i + 1}/${n * servers.length} ${server} ${new Date(t0).toISOString()} create ${t1 - t0} ms, goto at +${t2 - t0} ms, done at +${Date.now() - t0} ms: ${outcome}`);
}
srv.close();
for (const { url: server, counts } of servers) console.log(JSON.stringify({ server, n, delay, mode, counts }));
