// The session inspector (internal/liveview/assets/inspector.html): the session's
// rrweb recording replayed (rrweb's Replayer, the recorder's rrweb version; its iframe
// is sandboxed without allow-scripts) beside its network requests, console, page events
// and CDP commands, synchronised by time. Logs come a page at a time and the recording
// as a stream from the dashboard's JSON routes (/ui/api/…), which take the page's
// token in X-Dashboard-Token. Nothing from the logs or the recording is ever parsed as
// HTML here: lists and details are built with textContent.
import { Replayer } from 'rrweb';
import { Model, fmtBytes, fmtMs, fmtClock } from './model.js';
import { VList, cell } from './vlist.js';

const root = document.getElementById('inspector');
const base = root.dataset.root;
const sessionID = root.dataset.session;
const token = root.dataset.token;
const api = (p) => `${base}ui/api/sessions/${encodeURIComponent(sessionID)}/${p}`;
const $ = (id) => document.getElementById(id);
const t0 = performance.now();
const mark = (name) => {
  root.dataset[name] = String(Math.round(performance.now() - t0));
};

async function get(path) {
  const res = await fetch(path, { headers: { 'X-Dashboard-Token': token }, credentials: 'same-origin' });
  if (!res.ok) {
    let msg = res.status + ' ' + res.statusText;
    try {
      msg = (await res.json()).message || msg;
    } catch {
      // not the error shape: keep the status
    }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return res;
}

// ---- the lists ----

const model = new Model();
const tabs = {
  network: { head: ['Method', 'Status', 'URL', 'Type', 'Size', 'Time', 'Waterfall'], items: () => model.requests },
  console: { head: ['Time', 'Level', 'Message'], items: () => model.console },
  navigation: { head: ['Time', 'Event', 'URL'], items: () => model.navigation },
  commands: { head: ['Time', 'Page', 'Method', 'Params', 'Took'], items: () => model.commands },
  files: { head: ['Time', 'Kind', 'Name', 'Size'], items: () => files },
};
let files = [];
const EMPTY = {
  network: "No network events in this session's logs.",
  console: "No console messages or exceptions in this session's logs.",
  navigation: "No page events in this session's logs.",
  commands: 'No CDP commands were logged (logSession: false, or no client sent any).',
  files: 'No downloads or uploads.',
};
let tab = 'network';
let filter = '';
let shown = [];

function rel(t) {
  return replayStart ? fmtClock(t - replayStart) : fmtClock(t - model.t0);
}

function render(item, row) {
  switch (item.kind) {
    case 'request': {
      if (item.failed) row.classList.add('fail');
      cell(row, 'c-method', item.method);
      cell(row, 'c-status', item.status !== undefined ? String(item.status) : item.failed ? '(failed)' : '…');
      cell(row, 'c-url', item.url, item.url);
      cell(row, 'c-type', item.type);
      cell(row, 'c-size', fmtBytes(item.size));
      cell(row, 'c-time', item.end !== undefined ? fmtMs(item.end - item.start) : '');
      const wf = cell(row, 'c-wf', '');
      const span = Math.max(1, model.t1 - model.t0);
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.left = ((item.start - model.t0) / span) * 100 + '%';
      bar.style.width = Math.max(0.3, (((item.end ?? item.start) - item.start) / span) * 100) + '%';
      wf.appendChild(bar);
      break;
    }
    case 'console':
      row.classList.add('lvl-' + item.level);
      cell(row, 'c-clock', rel(item.t));
      cell(row, 'c-level', item.level);
      cell(row, 'c-text', item.text, item.text);
      break;
    case 'nav':
      cell(row, 'c-clock', rel(item.t));
      cell(row, 'c-what', item.what);
      cell(row, 'c-text', item.url, item.url);
      break;
    case 'command':
      if (item.failed) row.classList.add('fail');
      cell(row, 'c-clock', rel(item.t));
      cell(row, 'c-page', String(item.pageId));
      cell(row, 'c-cmd', item.method);
      cell(row, 'c-text', JSON.stringify(item.params).slice(0, 300));
      cell(row, 'c-size', item.answered ? fmtMs(item.duration) : 'no answer');
      break;
    case 'file': {
      cell(row, 'c-clock', item.t ? rel(item.t) : '');
      cell(row, 'c-what', item.dir);
      const c = cell(row, 'c-text', item.href ? '' : item.name, item.name);
      if (item.href) {
        const a = document.createElement('a');
        a.href = item.href;
        a.textContent = item.name;
        a.rel = 'noopener';
        c.appendChild(a);
      }
      cell(row, 'c-size', fmtBytes(item.size));
      break;
    }
  }
}

const list = new VList($('list'), $('list-spacer'), 22, render, (item) => {
  showDetail(item);
  if (item.t && player) player.seekAbs(item.t);
});

function refresh() {
  const all = tabs[tab].items();
  shown = filter ? all.filter((x) => (x.search || x.name || '').includes(filter)) : all;
  list.set(shown);
  const empty = $('list-empty');
  empty.hidden = shown.length > 0 || !root.dataset.logsDone;
  empty.textContent = filter ? 'Nothing matches the filter.' : EMPTY[tab];
  for (const k of Object.keys(tabs)) $('count-' + k).textContent = String(tabs[k].items().length);
  syncList(true);
}

function setHead() {
  const head = $('list-head');
  head.replaceChildren();
  head.className = 'list-head head-' + tab;
  $('list').className = 'vlist list-' + tab;
  for (const h of tabs[tab].head) cell(head, 'h', h);
}

for (const b of document.querySelectorAll('.tabs [data-tab]')) {
  b.addEventListener('click', () => {
    tab = b.dataset.tab;
    for (const o of document.querySelectorAll('.tabs [data-tab]')) o.classList.toggle('active', o === b);
    $('detail').hidden = true;
    list.selected = null;
    setHead();
    refresh();
  });
}
let filterTimer = 0;
$('filter').addEventListener('input', (e) => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    filter = e.target.value.trim().toLowerCase();
    refresh();
  }, 80);
});

// ---- details ----

function dl(parent, pairs) {
  const d = document.createElement('dl');
  for (const [k, v, cls] of pairs) {
    if (v === undefined || v === '') continue;
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = String(v);
    if (cls) dd.className = cls;
    d.append(dt, dd);
  }
  parent.appendChild(d);
  return d;
}

function pre(parent, title, value) {
  const h = document.createElement('h3');
  h.textContent = title;
  const p = document.createElement('pre');
  const s = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  p.textContent = s && s.length > 50000 ? s.slice(0, 50000) + '…' : s || '';
  parent.append(h, p);
}

function showDetail(item) {
  const d = $('detail');
  d.replaceChildren();
  d.hidden = false;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'close';
  close.textContent = '×';
  close.addEventListener('click', () => (d.hidden = true));
  d.appendChild(close);
  switch (item.kind) {
    case 'request': {
      const h = document.createElement('h3');
      h.textContent = item.method + ' ' + item.url;
      h.className = 'url';
      d.appendChild(h);
      const reason = [item.errorText, item.proxyError, item.canceled ? 'canceled' : '', item.blockedReason ? 'blocked: ' + item.blockedReason : '']
        .filter(Boolean).join(' · ');
      dl(d, [
        ['Status', item.status !== undefined ? item.status + ' ' + item.statusText : '(no response)', item.failed ? 'fail' : ''],
        ['Failure', reason, 'fail'],
        ['Type', item.type], ['MIME type', item.mimeType], ['Remote address', item.remoteIP],
        ['Size', fmtBytes(item.size)], ['Started', new Date(item.start).toISOString()],
        ['Duration', item.end !== undefined ? fmtMs(item.end - item.start) : ''],
        ['Page', item.pageId], ['Request id', item.requestId],
      ]);
      pre(d, 'Request headers', item.reqHeaders);
      pre(d, 'Response headers', item.respHeaders);
      if (item.timing) pre(d, 'Timing', item.timing);
      break;
    }
    case 'command':
      dl(d, [['Method', item.method], ['Page', item.pageId], ['Sent', new Date(item.t).toISOString()],
        ['Took', item.answered ? fmtMs(item.duration) : 'no answer'], ['Cut', item.truncated ? 'the message was longer than the log keeps' : '']]);
      pre(d, 'Params', item.params);
      pre(d, item.failed ? 'Error' : 'Result', item.result);
      break;
    case 'console':
      dl(d, [['Level', item.level], ['Time', new Date(item.t).toISOString()], ['Page', item.pageId]]);
      pre(d, 'Message', item.text);
      break;
    case 'nav':
      dl(d, [['Event', item.what], ['URL', item.url], ['Time', new Date(item.t).toISOString()], ['Page', item.pageId]]);
      break;
    case 'file':
      dl(d, [['Kind', item.dir], ['Name', item.name], ['Size', fmtBytes(item.size)], ['URL', item.url]]);
      break;
  }
}

// ---- loading ----

async function loadLogs() {
  let after = 0;
  let n = 0;
  for (;;) {
    const res = await get(api(`logs?after=${after}&limit=2000`));
    const page = await res.json();
    model.add(page.logs);
    n += page.logs.length;
    refresh();
    if (!root.dataset.firstRows) mark('firstRows');
    $('load-status').textContent = page.next ? `Loading logs… ${n}` : `${n} log entries`;
    if (!page.next) break;
    after = page.next;
  }
  root.dataset.logs = String(n);
  mark('logsDone');
  refresh();
  drawMarks();
}

async function loadFiles() {
  const res = await get(api('files'));
  const f = await res.json();
  const href = (kind, name) => `${base}ui/sessions/${encodeURIComponent(sessionID)}/files/${kind}/${encodeURIComponent(name)}`;
  files = [
    ...f.downloads.map((x) => ({ kind: 'file', dir: 'download', name: x.name, size: x.size, href: href('downloads', x.name), search: x.name.toLowerCase() })),
    ...f.uploads.map((x) => ({ kind: 'file', dir: 'upload', name: x.name, size: x.size, href: href('uploads', x.name), search: x.name.toLowerCase() })),
  ];
}

function addLogFiles() {
  for (const d of model.downloads) files.push({ kind: 'file', dir: 'download began', t: d.t, name: d.name, url: d.url, search: (d.name + ' ' + d.url).toLowerCase() });
  for (const u of model.uploads) files.push({ kind: 'file', dir: 'file input set', t: u.t, name: u.name, search: u.name.toLowerCase() });
}

// ---- the replay ----

let replayer = null;
let replayStart = 0;
let playing = false;
let player = null;

function fit() {
  if (!replayer || !replayer.iframe) return;
  const box = $('player');
  const w = parseInt(replayer.iframe.width, 10) || 1280;
  const h = parseInt(replayer.iframe.height, 10) || 720;
  const s = Math.min(box.clientWidth / w, box.clientHeight / h);
  replayer.wrapper.style.transform = `scale(${s})`;
  replayer.wrapper.style.transformOrigin = 'top left';
}

function startReplay(events) {
  $('player-status').remove();
  replayer = new Replayer(events, {
    root: $('player'), skipInactive: $('skip').checked, showWarning: false, mouseTail: false,
    triggerFocus: false, speed: 1,
  });
  replayer.on('resize', () => setTimeout(fit));
  replayer.on('finish', () => {
    playing = false;
    $('play').textContent = 'Play';
  });
  replayStart = replayer.getMetaData().startTime;
  window.addEventListener('resize', fit);
  $('play').disabled = false;
  $('seek').disabled = false;
  replayer.pause(0);
  fit();
  player = {
    seekAbs(t) {
      const off = Math.max(0, t - replayStart);
      if (playing) replayer.play(off);
      else replayer.pause(off);
      tick();
    },
  };
  setInterval(tick, 200);
  tick();
  mark('replayReady');
}

$('play').addEventListener('click', () => {
  if (!replayer) return;
  const meta = replayer.getMetaData();
  if (playing) {
    replayer.pause();
    playing = false;
  } else {
    let at = replayer.getCurrentTime();
    if (at >= meta.totalTime) at = 0;
    replayer.play(at);
    playing = true;
  }
  $('play').textContent = playing ? 'Pause' : 'Play';
});
$('seek').addEventListener('input', (e) => {
  if (!replayer) return;
  const off = Number(e.target.value);
  if (playing) replayer.play(off);
  else replayer.pause(off);
  tick();
});
$('speed').addEventListener('change', (e) => replayer && replayer.setConfig({ speed: Number(e.target.value) }));
$('skip').addEventListener('change', (e) => replayer && replayer.setConfig({ skipInactive: e.target.checked }));

function tick() {
  if (!replayer) return;
  const meta = replayer.getMetaData();
  const at = Math.min(replayer.getCurrentTime(), meta.totalTime);
  const seek = $('seek');
  seek.max = String(meta.totalTime);
  if (document.activeElement !== seek) seek.value = String(at);
  const label = $('player-time');
  label.textContent = `${fmtClock(at)} / ${fmtClock(meta.totalTime)}`;
  label.dataset.ms = String(Math.round(at));
  syncList(false);
}

// syncList marks the last entry at or before the playhead (entries after it are dimmed).
function syncList(force) {
  if (!replayer) return;
  const now = replayStart + Math.min(replayer.getCurrentTime(), replayer.getMetaData().totalTime);
  let lo = 0;
  let hi = shown.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((shown[mid].t || 0) <= now) lo = mid + 1;
    else hi = mid;
  }
  if (force) list.current = -3;
  list.setCurrent(lo - 1, $('follow').checked && playing);
}

// loadRecording reads the NDJSON stream; the replay starts once it has a full snapshot
// and the rest is added as it arrives.
async function loadRecording() {
  let res;
  try {
    res = await get(api('recording'));
  } catch (err) {
    $('player-status').textContent = 'No replay: ' + err.message;
    return;
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let pending = [];
  let full = false;
  let count = 0;
  const take = (line) => {
    if (!line) return;
    const ev = JSON.parse(line);
    if (ev.error) throw new Error(ev.error);
    count++;
    if (ev.type === 2) full = true;
    pending.push(ev);
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      take(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (done) take(buf.trim());
    if (!replayer && full && pending.length >= 2) {
      startReplay(pending);
      pending = [];
    } else if (replayer && pending.length) {
      for (const ev of pending) replayer.addEvent(ev);
      pending = [];
    }
    if (done) break;
  }
  if (!replayer) {
    $('player-status').textContent = count ? 'The recording has no page snapshot to replay.' : 'This session has no recording.';
    return;
  }
  root.dataset.events = String(count);
  mark('recordingDone');
  drawMarks();
  setTimeout(tick, 0);
}

// drawMarks puts the failed requests, console errors and navigations on a strip under
// the seek bar, each at its time in the replay; a click on one moves the replay there.
function drawMarks() {
  if (!replayer || !root.dataset.logsDone) return;
  const strip = $('marks');
  strip.replaceChildren();
  const total = replayer.getMetaData().totalTime || 1;
  const add = (list, cls, label) => {
    let n = 0;
    for (const x of list) {
      const off = (x.t || 0) - replayStart;
      if (off < 0 || off > total) continue;
      if (++n > 400) break;
      const m = document.createElement('span');
      m.className = 'mark ' + cls;
      m.style.left = (off / total) * 100 + '%';
      m.title = label(x);
      m.addEventListener('click', () => player.seekAbs(x.t));
      strip.appendChild(m);
    }
  };
  add(model.navigation.filter((x) => x.what === 'navigated'), 'm-nav', (x) => 'navigated ' + x.url);
  add(model.console.filter((x) => x.level === 'error' || x.level === 'exception'), 'm-err', (x) => x.level + ': ' + x.text.slice(0, 200));
  add(model.requests.filter((x) => x.failed), 'm-fail', (x) => (x.status || x.errorText) + ' ' + x.url);
}

// loadVideo shows the session's video replays (GET /ui/api/sessions/{id}/replays) when
// the server has them: video.js (hls.js) is loaded only then.
async function loadVideo() {
  let v;
  try {
    v = await (await get(api('replays'))).json();
  } catch {
    return; // 404: no video replays on this server or for this session
  }
  if (!v.pages || !v.pages.length) return;
  const box = $('video');
  box.dataset.pages = JSON.stringify(v.pages);
  const s = document.createElement('script');
  s.src = `${base}ui/assets/video.js`;
  document.body.appendChild(s);
}

setHead();
loadVideo();
loadLogs()
  .then(() => loadFiles().catch(() => {}))
  .then(() => {
    addLogFiles();
    refresh();
  })
  .catch((err) => {
    $('load-status').textContent = 'Logs: ' + err.message;
    root.dataset.logsError = err.message;
  });
loadRecording().catch((err) => {
  const s = $('player-status');
  if (s) s.textContent = 'Replay failed: ' + err.message;
});
