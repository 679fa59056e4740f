// browserd live view: draws the session's tab from screencast frames and sends the
// viewer's mouse, wheel and keyboard back. Protocol: internal/liveview/message.go.
'use strict';
(() => {
  const body = document.body;
  const params = new URLSearchParams(location.search);
  const last = (k) => { const v = params.getAll(k); return v.length ? v[v.length - 1] : null; };
  const on = (v) => v !== null && v !== 'false' && v !== '0';
  const readOnly = body.dataset.readonly === 'true' || on(last('readonly')) || on(last('readOnly'));
  if (last('navbar') === 'false') body.classList.add('no-navbar');
  if (readOnly) body.classList.add('read-only');

  const $ = (id) => document.getElementById(id);
  const stage = $('stage'), canvas = $('screen'), overlay = $('overlay');
  const tabsEl = $('tabs'), urlInput = $('url'), badge = $('badge');
  const g = canvas.getContext('2d');
  badge.hidden = !readOnly;

  // Stats for people and for tests: frames drawn, frames per second over the last
  // second, and input round trips (viewer → browser handled → viewer) in ms.
  const stats = { frames: 0, bytes: 0, fps: 0, connects: 0, inputRtt: [], lastFrameAt: 0, quality: null };
  let fpsWindow = [];

  let ws = null, retry = 0, done = false, opened = false;
  let meta = null, drawnSeq = 0, seq = 0;
  let tabs = [], active = body.dataset.page || last('page') || '';
  // pinned: the viewer chose a tab (page= or a click), so new tabs are not followed.
  let pinned = !!active;
  const sentInputs = new Map();

  const FINAL = {
    4401: 'This live view link has expired.',
    4410: 'The session has ended.',
  };

  function setOverlay(text) {
    overlay.textContent = text;
    overlay.hidden = !text;
  }

  function send(m) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
  }

  function wsURL() {
    const u = new URL('screencast', location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    u.search = '';
    if (active) u.searchParams.set('page', active);
    if (pinned) u.searchParams.set('pin', '1');
    if (readOnly) u.searchParams.set('readonly', '1');
    return u.href;
  }

  function connect() {
    if (done) return;
    opened = false;
    setOverlay(stats.connects ? 'Reconnecting…' : 'Connecting…');
    ws = new WebSocket(wsURL());
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      opened = true;
      retry = 0;
      stats.connects++;
      sendViewport(true);
      if (paused()) send({ type: 'pause' });
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') onText(JSON.parse(ev.data));
      else onFrame(ev.data);
    };
    ws.onclose = (ev) => {
      ws = null;
      if (FINAL[ev.code]) {
        finish(FINAL[ev.code]);
      } else if (!opened) {
        checkStatus();
      } else {
        reconnect();
      }
    };
  }

  function finish(text) {
    done = true;
    setOverlay(text);
  }

  function reconnect() {
    const delay = Math.min(5000, 250 * 2 ** retry++);
    setOverlay('Reconnecting…');
    setTimeout(connect, delay);
  }

  // A websocket that could not open says nothing about why: ask.
  async function checkStatus() {
    try {
      const r = await fetch(new URL('status', location.href), { cache: 'no-store' });
      if (r.status === 401 || r.status === 403 || r.status === 404 || r.status === 410) {
        const b = await r.json().catch(() => ({}));
        finish(b.message || 'This live view is no longer available.');
        return;
      }
    } catch (e) { /* the server is unreachable: keep trying */ }
    reconnect();
  }

  function onText(m) {
    switch (m.type) {
      case 'tabs':
        tabs = m.tabs || [];
        active = m.active || '';
        renderTabs();
        if (!active) setOverlay('No open tab.');
        break;
      case 'input': {
        const t = sentInputs.get(m.seq);
        if (t !== undefined) {
          sentInputs.delete(m.seq);
          stats.inputRtt.push(performance.now() - t);
          if (stats.inputRtt.length > 1000) stats.inputRtt.shift();
        }
        break;
      }
      case 'error':
        console.warn('live view:', m.message);
        break;
    }
  }

  function onFrame(buf) {
    const n = new DataView(buf).getUint32(0);
    const m = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
    const blob = new Blob([new Uint8Array(buf, 4 + n)], { type: 'image/jpeg' });
    stats.bytes += buf.byteLength;
    createImageBitmap(blob).then((bmp) => {
      if (m.seq > drawnSeq) {
        drawnSeq = m.seq;
        if (canvas.width !== bmp.width || canvas.height !== bmp.height) {
          canvas.width = bmp.width;
          canvas.height = bmp.height;
        }
        g.drawImage(bmp, 0, 0);
        meta = m.metadata;
        layout();
        stats.frames++;
        const now = performance.now();
        stats.lastFrameAt = now;
        fpsWindow.push(now);
        while (fpsWindow.length && now - fpsWindow[0] > 1000) fpsWindow.shift();
        stats.fps = fpsWindow.length;
        if (!done) setOverlay('');
      }
      bmp.close();
      send({ type: 'ack', seq: m.seq });
    }, () => send({ type: 'ack', seq: m.seq }));
  }

  // layout fits the frame into the stage, keeping its aspect ratio.
  function layout() {
    const r = stage.getBoundingClientRect();
    if (!canvas.width || !r.width || !r.height) return;
    const s = Math.min(r.width / canvas.width, r.height / canvas.height);
    const w = canvas.width * s, h = canvas.height * s;
    Object.assign(canvas.style, {
      width: w + 'px', height: h + 'px', left: (r.width - w) / 2 + 'px', top: (r.height - h) / 2 + 'px',
    });
  }

  let lastViewport = '';
  function sendViewport(force) {
    const r = stage.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.min(8192, Math.round(r.width * dpr)));
    const height = Math.max(1, Math.min(8192, Math.round(r.height * dpr)));
    const key = width + 'x' + height;
    if (!force && key === lastViewport) return;
    lastViewport = key;
    send({ type: 'viewport', width, height });
  }

  let resizeTimer = 0;
  new ResizeObserver(() => {
    layout();
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => sendViewport(false), 150);
  }).observe(stage);

  // The page's size in CSS pixels, which input coordinates are in.
  function pageSize() {
    return meta ? { w: meta.deviceWidth, h: meta.deviceHeight } : { w: canvas.width, h: canvas.height };
  }

  function toPage(ev) {
    const r = canvas.getBoundingClientRect();
    const p = pageSize();
    return { x: (ev.clientX - r.left) / r.width * p.w, y: (ev.clientY - r.top) / r.height * p.h };
  }

  // toClient maps a point of the page (CSS pixels) to the viewer's window: for tests.
  function toClient(x, y) {
    const r = canvas.getBoundingClientRect();
    const p = pageSize();
    return { x: r.left + x / p.w * r.width, y: r.top + y / p.h * r.height };
  }

  const modifiers = (ev) => (ev.altKey ? 1 : 0) | (ev.ctrlKey ? 2 : 0) | (ev.metaKey ? 4 : 0) | (ev.shiftKey ? 8 : 0);
  const BUTTONS = ['left', 'middle', 'right', 'back', 'forward'];

  let clicks = { n: 0, t: 0, x: 0, y: 0 };
  function mouse(event, ev, clickCount) {
    const p = toPage(ev);
    const m = {
      type: 'mouse', event, x: p.x, y: p.y, modifiers: modifiers(ev),
      button: event === 'move' ? (ev.buttons & 1 ? 'left' : 'none') : (BUTTONS[ev.button] || 'none'),
      buttons: ev.buttons, clickCount,
    };
    if (event !== 'move') {
      m.seq = ++seq;
      sentInputs.set(m.seq, performance.now());
    }
    send(m);
  }

  canvas.addEventListener('pointerdown', (ev) => {
    canvas.focus();
    if (readOnly || done) return;
    ev.preventDefault();
    try {
      canvas.setPointerCapture(ev.pointerId);
    } catch (e) { /* a pointer that is already gone */ }
    const now = performance.now();
    const near = Math.abs(ev.clientX - clicks.x) < 5 && Math.abs(ev.clientY - clicks.y) < 5;
    clicks = { n: now - clicks.t < 500 && near ? Math.min(clicks.n + 1, 3) : 1, t: now, x: ev.clientX, y: ev.clientY };
    mouse('down', ev, clicks.n);
  });
  canvas.addEventListener('pointerup', (ev) => {
    if (readOnly || done) return;
    ev.preventDefault();
    mouse('up', ev, clicks.n);
  });
  let pendingMove = null;
  canvas.addEventListener('pointermove', (ev) => {
    if (readOnly || done) return;
    if (!pendingMove) {
      requestAnimationFrame(() => {
        const e = pendingMove;
        pendingMove = null;
        mouse('move', e, 0);
      });
    }
    pendingMove = ev;
  });
  canvas.addEventListener('wheel', (ev) => {
    if (readOnly || done) return;
    ev.preventDefault();
    const k = ev.deltaMode === 1 ? 40 : ev.deltaMode === 2 ? 800 : 1;
    const p = toPage(ev);
    send({ type: 'wheel', x: p.x, y: p.y, dx: ev.deltaX * k, dy: ev.deltaY * k, modifiers: modifiers(ev) });
  }, { passive: false });
  canvas.addEventListener('contextmenu', (ev) => ev.preventDefault());

  function key(event, ev) {
    if (readOnly || done) return;
    // Ctrl/Cmd+V: let the browser fire its paste event, which sends the text.
    if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 'v') return;
    ev.preventDefault();
    let text = '';
    if (event === 'down') {
      if (ev.key.length === 1 && !ev.ctrlKey && !ev.metaKey) text = ev.key;
      else if (ev.key === 'Enter') text = '\r';
    }
    const m = {
      type: 'key', event, key: ev.key, code: ev.code, keyCode: ev.keyCode || 0, text,
      location: ev.location || 0, repeat: ev.repeat, modifiers: modifiers(ev),
    };
    if (event === 'down') {
      m.seq = ++seq;
      sentInputs.set(m.seq, performance.now());
    }
    send(m);
  }
  canvas.addEventListener('keydown', (ev) => key('down', ev));
  canvas.addEventListener('keyup', (ev) => key('up', ev));
  document.addEventListener('paste', (ev) => {
    if (readOnly || done || document.activeElement !== canvas) return;
    const text = ev.clipboardData && ev.clipboardData.getData('text/plain');
    if (text) {
      ev.preventDefault();
      send({ type: 'text', text: text.slice(0, 60000) });
    }
  });

  function renderTabs() {
    tabsEl.replaceChildren(...tabs.map((t) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'tab' + (t.id === active ? ' active' : '');
      b.setAttribute('role', 'tab');
      b.setAttribute('aria-selected', String(t.id === active));
      b.dataset.id = t.id;
      b.title = t.url;
      b.textContent = t.title || t.url || 'New tab';
      b.addEventListener('click', () => {
        if (t.id !== active) {
          pinned = true;
          send({ type: 'switch', id: t.id });
        }
        canvas.focus();
      });
      return b;
    }));
    const cur = tabs.find((t) => t.id === active);
    if (document.activeElement !== urlInput) urlInput.value = cur ? cur.url : '';
    document.title = (cur && cur.title ? cur.title + ' · ' : '') + 'Live view · browserd';
  }

  $('go').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (readOnly) return;
    send({ type: 'navigate', url: urlInput.value });
    urlInput.blur();
    canvas.focus();
  });
  $('back').addEventListener('click', () => send({ type: 'history', delta: -1 }));
  $('forward').addEventListener('click', () => send({ type: 'history', delta: 1 }));
  $('reload').addEventListener('click', () => send({ type: 'reload' }));

  // Nobody watches a hidden page: the server stops the screencast meanwhile. An
  // embedding app can pause a view it hides some other way (browserdLive.pause(true)).
  let pausedByApp = false;
  const paused = () => document.hidden || pausedByApp;
  document.addEventListener('visibilitychange', () => send({ type: paused() ? 'pause' : 'resume' }));
  function pause(on) {
    pausedByApp = !!on;
    send({ type: paused() ? 'pause' : 'resume' });
  }
  // An embedding page of any origin can do the same with
  // iframe.contentWindow.postMessage({ type: 'browserd.pause', paused: true }, '*').
  window.addEventListener('message', (ev) => {
    const d = ev.data;
    if (d && typeof d === 'object' && d.type === 'browserd.pause') pause(d.paused);
  });
  // Keeps idle connections open through proxies.
  setInterval(() => send({ type: 'ping', seq: Date.now() }), 20000);

  // pixel returns the [r, g, b] drawn for a point of the page (CSS pixels).
  function pixel(x, y) {
    const p = pageSize();
    const d = g.getImageData(Math.floor(x / p.w * canvas.width), Math.floor(y / p.h * canvas.height), 1, 1).data;
    return [d[0], d[1], d[2]];
  }

  // For people debugging a live view, and for browserd's own tests.
  window.browserdLive = { stats, toClient, pixel, pause, tabs: () => tabs, active: () => active, readOnly };
  connect();
})();
