// Custom CA certificates through the official SDK (certificates resource of SDK 2.21,
// spec §6.11) and a session that trusts one (proxySettings.caCertificates), seen
// through Playwright: an HTTPS page whose certificate a test CA signed fails without
// the CA and loads with it. The CA is made with the openssl CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import Browserbase, { toFile } from '@browserbasehq/sdk';
import { chromium } from 'playwright-core';
import { client, projectID, Sessions, UUID_RE, RFC3339_RE } from './helpers.mjs';

const bb = client();
const sessions = new Sessions(bb);
let dir, ca, site;

// makeCA writes a CA and a server certificate for 127.0.0.1 signed by it.
function makeCA() {
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=browserd compat CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.txt'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '1', '-extfile', 'ext.txt');
  const read = (f) => readFileSync(join(dir, f));
  return { pem: read('ca.pem'), key: read('ca.key'), srvCert: read('srv.pem'), srvKey: read('srv.key') };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'browserd-compat-ca-'));
  ca = makeCA();
  const srv = https.createServer({ key: ca.srvKey, cert: ca.srvCert }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>signed by the compat CA</title><p id="ok">secure</p>');
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  site = { url: `https://127.0.0.1:${srv.address().port}/`, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(() => r()); }) };
});
after(async () => {
  await sessions.releaseAll();
  await site?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('certificates.create / list / retrieve / delete; bad files are 400', async () => {
  const pid = await projectID();
  const cert = await bb.certificates.create({ file: await toFile(ca.pem, 'ca.pem') });
  assert.match(cert.id, UUID_RE);
  assert.match(cert.createdAt, RFC3339_RE);
  assert.match(cert.updatedAt, RFC3339_RE);
  assert.equal(cert.projectId, pid);
  assert.deepEqual(Object.keys(cert).sort(), ['createdAt', 'id', 'projectId', 'updatedAt']);
  assert.deepEqual(await bb.certificates.retrieve(cert.id), cert);
  const list = await bb.certificates.list();
  assert.ok(Array.isArray(list) && list.some((c) => c.id === cert.id), 'list has the certificate');
  for (const [name, buf, want] of [
    ['garbage', Buffer.from('hello'), /not a certificate/],
    ['a private key', ca.key, /private key/],
    ['a server certificate', ca.srvCert, /not a CA certificate/],
  ]) {
    const err = await bb.certificates.create({ file: await toFile(buf, 'x.pem') }).then(() => null, (e) => e);
    assert.ok(err instanceof Browserbase.BadRequestError, `${name}: got ${err?.constructor?.name}: ${err?.message}`);
    assert.match(err.error?.message ?? '', want, name);
  }
  assert.equal(await bb.certificates.delete(cert.id), null, 'delete → 204, the SDK returns null');
  const err = await bb.certificates.retrieve(cert.id).then(() => null, (e) => e);
  assert.ok(err instanceof Browserbase.NotFoundError, `retrieve after delete: ${err?.constructor?.name}`);
  const err2 = await sessions.create({ proxySettings: { caCertificates: [cert.id] } }).then(() => null, (e) => e);
  assert.ok(err2 instanceof Browserbase.NotFoundError, `create with a deleted certificate: ${err2?.constructor?.name}`);
});

async function visit(params) {
  const s = await sessions.create(params);
  const browser = await chromium.connectOverCDP(s.connectUrl);
  try {
    const page = browser.contexts()[0].pages()[0];
    return await page.goto(site.url).then(async () => `title: ${await page.title()}`, (e) => e.message);
  } finally {
    await browser.close();
  }
}

test('a session with proxySettings.caCertificates trusts the CA; one without does not', async () => {
  const cert = await bb.certificates.create({ file: await toFile(ca.pem, 'ca.pem') });
  try {
    assert.match(await visit({}), /ERR_CERT_AUTHORITY_INVALID/);
    assert.equal(await visit({ proxySettings: { caCertificates: [cert.id] } }), 'title: signed by the compat CA');
  } finally {
    await bb.certificates.delete(cert.id);
  }
});
