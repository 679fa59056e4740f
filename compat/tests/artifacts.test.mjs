// Session artifacts through the official SDK (spec §3.6–3.9): uploads.create puts a file
// where DOM.setFileInputFiles finds it (/tmp/.uploads/<name>), downloads.list returns the
// files the browser downloaded as a ZIP (Stagehand's downloadPath "downloads"),
// logs.list returns the CDP commands with their responses, and recording.retrieve the
// rrweb events, in time order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import puppeteer from 'puppeteer-core';
import Browserbase, { toFile } from '@browserbasehq/sdk';
import { client, Sessions, waitFor } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
let site;

before(async () => {
  const srv = http.createServer((req, res) => {
    if (req.url === '/file') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="compat-report.txt"' });
      res.end('the compat report');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><title>artifacts</title></head><body>
<p id="x">original text</p><input type="file" id="f"><a id="dl" href="/file">download</a></body></html>`);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  site = { url: `http://127.0.0.1:${srv.address().port}/`, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(() => r()); }) };
});
after(async () => {
  await sessions.releaseAll();
  await site?.close();
});

/** zipNames returns the file names in a ZIP's central directory. */
function zipNames(buf) {
  const names = [];
  for (let i = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])), n = buf.readUInt16LE(i + 10), p = buf.readUInt32LE(i + 16); n > 0; n--) {
    const len = buf.readUInt16LE(p + 28), extra = buf.readUInt16LE(p + 30), comment = buf.readUInt16LE(p + 32);
    names.push(buf.subarray(p + 46, p + 46 + len).toString('utf8'));
    p += 46 + len + extra + comment;
  }
  return names;
}

async function downloads(id) {
  const res = await bb.sessions.downloads.list(id);
  assert.equal(res.headers.get('content-type'), 'application/zip');
  return Buffer.from(await res.arrayBuffer());
}

test('sdk: uploads, downloads, logs and recording of one session', async () => {
  const s = await sessions.create({});
  const empty = await downloads(s.id);
  assert.equal(empty.length, 22, 'no downloads yet: a valid empty zip');
  assert.deepEqual(zipNames(empty), []);

  const up = await bb.sessions.uploads.create(s.id, { file: await toFile(Buffer.from('hello from compat'), 'compat.txt') });
  assert.equal(typeof up.message, 'string');

  const browser = await puppeteer.connect({ browserWSEndpoint: s.connectUrl, defaultViewport: null });
  try {
    const bcdp = await browser.target().createCDPSession();
    await bcdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: 'downloads', eventsEnabled: true });
    const [page] = await browser.pages();
    await page.goto(site.url, { waitUntil: 'load' });
    const cdp = await page.createCDPSession();
    const { root } = await cdp.send('DOM.getDocument');
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: '#f' });
    await cdp.send('DOM.setFileInputFiles', { nodeId, files: ['/tmp/.uploads/compat.txt'] });
    assert.equal(await page.evaluate(() => document.querySelector('#f').files[0].text()), 'hello from compat');
    await page.evaluate(() => { document.querySelector('#x').textContent = 'changed-by-compat'; });
    await page.click('#dl');

    const zip = await waitFor(async () => {
      const z = await downloads(s.id);
      return zipNames(z).some((n) => /^compat-report-\d{13}\.txt$/.test(n)) && z;
    }, { timeout: 30000, what: 'the download in the zip' });
    assert.ok(zip.includes(Buffer.from('the compat report')), 'the file content is in the zip');
    assert.ok(!zipNames(zip).some((n) => n.endsWith('.crdownload')));

    const logs = await bb.sessions.logs.list(s.id);
    assert.ok(Array.isArray(logs) && logs.length > 0);
    for (const l of logs) {
      assert.equal(typeof l.method, 'string');
      assert.equal(typeof l.pageId, 'number');
      assert.equal(l.sessionId, s.id);
    }
    const nav = logs.find((l) => l.method === 'Page.navigate' && l.request?.params?.url === site.url);
    assert.ok(nav, 'the navigation is logged');
    assert.equal(typeof nav.request.rawBody, 'string');
    assert.equal(typeof nav.response.result.frameId, 'string', 'with its response');
    assert.ok(logs.some((l) => l.method === 'DOM.setFileInputFiles' && l.request.params.files[0] === '/tmp/.uploads/compat.txt'),
      'logs keep what the client sent');

    const events = await waitFor(async () => {
      const ev = await bb.sessions.recording.retrieve(s.id);
      const full = ev.some((e) => e.type === 2 && JSON.stringify(e.data).includes('original text'));
      const change = ev.some((e) => e.type === 3 && JSON.stringify(e.data).includes('changed-by-compat'));
      return full && change && ev;
    }, { timeout: 30000, what: 'the recorded DOM change' });
    for (let i = 1; i < events.length; i++) assert.ok(events[i].timestamp >= events[i - 1].timestamp, 'time order');
    assert.ok(events.every((e) => e.sessionId === s.id && typeof e.type === 'number' && typeof e.data === 'object'));
    // Nothing of the recorder is visible to the page.
    assert.equal(await page.evaluate(() => Object.getOwnPropertyNames(window).filter((k) => /rrweb|browserd/i.test(k)).length), 0);
  } finally {
    await browser.disconnect();
  }
  await bb.sessions.update(s.id, { status: 'REQUEST_RELEASE' });
  const after = await downloads(s.id);
  assert.ok(zipNames(after).some((n) => /^compat-report-\d{13}\.txt$/.test(n)), 'downloads outlive the session');
  assert.ok((await bb.sessions.logs.list(s.id)).length > 0, 'logs outlive the session');
  await assert.rejects(bb.sessions.uploads.create(s.id, { file: await toFile(Buffer.from('x'), 'late.txt') }), Browserbase.NotFoundError);
});

test('sdk: artifact errors', async () => {
  const missing = '00000000-0000-4000-8000-000000000000';
  await assert.rejects(bb.sessions.logs.list(missing), Browserbase.NotFoundError);
  await assert.rejects(bb.sessions.recording.retrieve(missing), Browserbase.NotFoundError);
  await assert.rejects(bb.sessions.downloads.list(missing), Browserbase.NotFoundError);
  await assert.rejects(bb.sessions.uploads.create(missing, { file: await toFile(Buffer.from('x'), 'x.txt') }), Browserbase.NotFoundError);
  const quiet = await sessions.create({ browserSettings: { logSession: false, recordSession: false } });
  await assert.rejects(bb.sessions.logs.list(quiet.id), Browserbase.UnprocessableEntityError);
  await assert.rejects(bb.sessions.recording.retrieve(quiet.id), Browserbase.UnprocessableEntityError);
  await assert.rejects(bb.sessions.uploads.create(quiet.id, { file: await toFile(Buffer.from('x'), '..') }), Browserbase.BadRequestError);
});
