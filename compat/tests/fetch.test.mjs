// POST /v1/fetch through the official SDK's fetchAPI.create (SDK 2.21): a page served by
// the test on loopback (the suite's server runs with --allow-private-networks) as
// Markdown and raw, a redirect, and the refusals a client sees as SDK errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import Browserbase from '@browserbasehq/sdk';
import { client, UUID_RE, baseURL } from './helpers.mjs';

const bb = client();
let site;

before(async () => {
  const srv = http.createServer((req, res) => {
    if (req.url === '/moved') {
      res.writeHead(302, { location: '/article' }).end();
      return;
    }
    if (req.url === '/logo.png') {
      res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'x-compat': 'fetch' });
    res.end('<!doctype html><html><head><title>Article</title></head><body>' +
      '<h1>Fetch compat</h1><p>Some <strong>bold</strong> words and <a href="/next">a link</a>.</p>' +
      '<ul><li>one</li><li>two</li></ul></body></html>');
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  site = { url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(() => r()); }) };
});

after(async () => {
  await site?.close();
});

test('fetchAPI.create as markdown', async () => {
  const res = await bb.fetchAPI.create({ url: `${site.url}/article`, format: 'markdown' });
  assert.match(res.id, UUID_RE);
  assert.equal(res.statusCode, 200);
  assert.equal(res.contentType, 'text/html; charset=utf-8');
  assert.equal(res.encoding, 'utf-8');
  assert.equal(res.headers['x-compat'], 'fetch');
  assert.equal(typeof res.content, 'string');
  assert.match(res.content, /^# Fetch compat$/m);
  assert.match(res.content, /\*\*bold\*\*/);
  assert.ok(res.content.includes(`[a link](${site.url}/next)`), res.content);
  assert.match(res.content, /^- one$/m);
});

test('fetchAPI.create raw, binary and redirects', async () => {
  const raw = await bb.fetchAPI.create({ url: `${site.url}/article` });
  assert.ok(raw.content.startsWith('<!doctype html>'), raw.content);
  const png = await bb.fetchAPI.create({ url: `${site.url}/logo.png` });
  assert.equal(png.encoding, 'base64');
  assert.deepEqual([...Buffer.from(png.content, 'base64')], [0x89, 0x50, 0x4e, 0x47, 0, 1, 2]);
  const moved = await bb.fetchAPI.create({ url: `${site.url}/moved` });
  assert.equal(moved.statusCode, 302); // allowRedirects defaults to false, as Browserbase's
  assert.equal(moved.headers.location, '/article');
  const followed = await bb.fetchAPI.create({ url: `${site.url}/moved`, allowRedirects: true, format: 'markdown' });
  assert.equal(followed.statusCode, 200);
  assert.match(followed.content, /# Fetch compat/);
});

test('fetchAPI.create refusals are SDK errors, not retried', async () => {
  let requests = 0;
  const counting = new Browserbase({
    apiKey: process.env.BROWSERBASE_API_KEY,
    baseURL: baseURL(),
    fetch: (url, init) => { requests++; return fetch(url, init); },
  });
  await assert.rejects(counting.fetchAPI.create({ url: 'file:///etc/passwd' }), (err) => {
    assert.ok(err instanceof Browserbase.BadRequestError, String(err));
    assert.match(err.message, /http or https/);
    return true;
  });
  // The server's own API port: refused even with --allow-private-networks.
  await assert.rejects(counting.fetchAPI.create({ url: `${baseURL()}/v1/projects` }), (err) => {
    assert.ok(err instanceof Browserbase.PermissionDeniedError, String(err));
    assert.match(err.message, /this browserd server listens on itself/);
    return true;
  });
  // No model configured on the suite's server.
  await assert.rejects(counting.fetchAPI.create({ url: `${site.url}/article`, format: 'json', schema: { type: 'object' } }), (err) => {
    assert.ok(err instanceof Browserbase.BadRequestError, String(err));
    assert.match(err.message, /--llm-url/);
    return true;
  });
  await assert.rejects(counting.fetchAPI.create({ url: `${site.url}/logo.png`, format: 'markdown' }), (err) => {
    assert.equal(err.status, 422);
    return true;
  });
  assert.equal(requests, 4);
});
