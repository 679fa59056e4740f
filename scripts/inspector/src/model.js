// The inspector's model: a session's logs (spec §2.6, as GET /ui/api/sessions/{id}/logs
// pages them) turned into network requests, console messages, page events and CDP
// commands. Browser events are logs whose method is the CDP event's name, with the
// event's params in request.params and no response; commands have a response.
// Everything here is untrusted page content: it is only ever put in the page as text.

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

// logTime is a log's time in ms since the epoch.
function logTime(l) {
  return num(l.timestamp) ?? num(l.request && l.request.timestamp) ?? 0;
}

function str(v, max = 4000) {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > max ? s.slice(0, max) + '…' : s;
}

// consoleText renders Runtime.consoleAPICalled args as DevTools' console does, roughly.
function consoleText(args) {
  if (!Array.isArray(args)) return '';
  return args
    .map((a) => {
      if (!a || typeof a !== 'object') return '';
      if ('value' in a) return typeof a.value === 'string' ? a.value : str(a.value, 1000);
      if (a.unserializableValue) return String(a.unserializableValue);
      return a.description || a.type || '';
    })
    .join(' ');
}

const HANDLED = new Set([
  'Network.requestWillBeSent', 'Network.responseReceived', 'Network.loadingFinished', 'Network.loadingFailed',
  'Runtime.consoleAPICalled', 'Runtime.exceptionThrown', 'Page.frameNavigated', 'Page.loadEventFired',
  'Page.domContentEventFired', 'Target.attachedToTarget', 'Target.detachedFromTarget', 'Browser.downloadWillBegin',
  'Browser.downloadProgress', 'Page.javascriptDialogOpening',
]);

export class Model {
  constructor() {
    this.requests = []; // in the order they began
    this.byKey = new Map(); // `${pageId} ${requestId}` → the request in flight under it
    this.console = [];
    this.navigation = [];
    this.commands = [];
    this.downloads = []; // Browser.downloadWillBegin
    this.uploads = []; // DOM.setFileInputFiles commands
    this.t0 = Infinity; // the earliest time seen
    this.t1 = -Infinity; // the latest
  }

  // add takes one page of logs, in order.
  add(logs) {
    for (const l of logs) {
      if (!l || typeof l.method !== 'string') continue;
      const t = logTime(l);
      if (t) {
        this.t0 = Math.min(this.t0, t);
        this.t1 = Math.max(this.t1, t);
      }
      const params = (l.request && l.request.params && typeof l.request.params === 'object') ? l.request.params : {};
      if (!l.response && HANDLED.has(l.method)) {
        this.event(l, t, params);
      } else {
        this.command(l, t, params);
      }
    }
  }

  key(l, p) {
    return `${l.pageId} ${p.requestId}`;
  }

  event(l, t, p) {
    switch (l.method) {
      case 'Network.requestWillBeSent': {
        const k = this.key(l, p);
        const prev = this.byKey.get(k);
        if (prev && p.redirectResponse) {
          prev.status = num(p.redirectResponse.status);
          prev.statusText = str(p.redirectResponse.statusText, 200);
          prev.respHeaders = p.redirectResponse.headers || {};
          prev.mimeType = str(p.redirectResponse.mimeType, 200);
          this.finish(prev, t, p.timestamp);
        }
        const req = p.request || {};
        const start = num(p.wallTime) ? p.wallTime * 1000 : t;
        const r = {
          kind: 'request', pageId: l.pageId, requestId: str(p.requestId, 200), url: str(req.url, 8000),
          method: str(req.method, 20) || 'GET', type: str(p.type, 40), reqHeaders: req.headers || {},
          start, mono: num(p.timestamp), end: undefined, status: undefined, statusText: '', mimeType: '',
          respHeaders: {}, remoteIP: '', size: undefined, timing: undefined, failed: false, errorText: '', proxyError: '',
          canceled: false, blockedReason: '', t: start,
        };
        r.search = (r.method + ' ' + r.url + ' ' + r.type).toLowerCase();
        this.byKey.set(k, r);
        this.requests.push(r);
        break;
      }
      case 'Network.responseReceived': {
        const r = this.byKey.get(this.key(l, p));
        const res = p.response || {};
        if (!r) break;
        r.status = num(res.status);
        r.statusText = str(res.statusText, 200);
        r.mimeType = str(res.mimeType, 200);
        r.respHeaders = res.headers || {};
        // browserd's session proxy names why it could not reach the host (a 502).
        for (const [k, v] of Object.entries(r.respHeaders)) {
          if (k.toLowerCase() === 'x-browserd-proxy-error') r.proxyError = str(v, 500);
        }
        r.remoteIP = str(res.remoteIPAddress, 100);
        r.timing = res.timing;
        if (p.type) r.type = str(p.type, 40);
        if (num(res.encodedDataLength)) r.size = res.encodedDataLength;
        if (r.status >= 400) r.failed = true;
        r.search = (r.method + ' ' + r.url + ' ' + r.type + ' ' + r.status + ' ' + (r.proxyError || '')).toLowerCase();
        break;
      }
      case 'Network.loadingFinished': {
        const r = this.byKey.get(this.key(l, p));
        if (!r) break;
        if (num(p.encodedDataLength) !== undefined) r.size = p.encodedDataLength;
        this.finish(r, t, p.timestamp);
        break;
      }
      case 'Network.loadingFailed': {
        const r = this.byKey.get(this.key(l, p));
        if (!r) break;
        r.failed = true;
        r.errorText = str(p.errorText, 500);
        r.canceled = !!p.canceled;
        r.blockedReason = str(p.blockedReason, 200);
        this.finish(r, t, p.timestamp);
        r.search += ' ' + r.errorText.toLowerCase();
        break;
      }
      case 'Runtime.consoleAPICalled': {
        const text = consoleText(p.args);
        const level = str(p.type, 20) || 'log';
        this.console.push({ kind: 'console', t, pageId: l.pageId, level, text, search: (level + ' ' + text).toLowerCase() });
        break;
      }
      case 'Runtime.exceptionThrown': {
        const d = p.exceptionDetails || {};
        const text = str((d.exception && d.exception.description) || d.text, 4000);
        this.console.push({ kind: 'console', t, pageId: l.pageId, level: 'exception', text, search: ('exception ' + text).toLowerCase() });
        break;
      }
      case 'Page.frameNavigated': {
        const f = p.frame || {};
        if (f.parentId) break; // the main frame's navigations only
        this.nav(l, t, 'navigated', str(f.url, 8000));
        break;
      }
      case 'Page.javascriptDialogOpening':
        this.nav(l, t, 'dialog ' + str(p.type, 20), str(p.message, 2000));
        break;
      case 'Page.loadEventFired':
        this.nav(l, t, 'load', '');
        break;
      case 'Page.domContentEventFired':
        this.nav(l, t, 'DOMContentLoaded', '');
        break;
      case 'Target.attachedToTarget': {
        const ti = p.targetInfo || {};
        this.nav(l, t, 'attached ' + str(ti.type, 40), str(ti.url, 8000));
        break;
      }
      case 'Target.detachedFromTarget':
        this.nav(l, t, 'detached', '');
        break;
      case 'Browser.downloadWillBegin': {
        const d = { kind: 'download', t, name: str(p.suggestedFilename, 500), url: str(p.url, 8000) };
        this.downloads.push(d);
        this.nav(l, t, 'download', d.name + ' ← ' + d.url);
        break;
      }
      default:
        break;
    }
  }

  nav(l, t, what, url) {
    this.navigation.push({ kind: 'nav', t, pageId: l.pageId, what, url, search: (what + ' ' + url).toLowerCase() });
  }

  // finish ends a request at its monotonic end time when both ends have one.
  finish(r, t, mono) {
    if (num(mono) !== undefined && r.mono !== undefined) {
      r.end = r.start + Math.max(0, (mono - r.mono) * 1000);
    } else {
      r.end = t || r.start;
    }
    this.t1 = Math.max(this.t1, r.end);
  }

  command(l, t, p) {
    const res = l.response || null;
    const result = res ? res.result : undefined;
    const failed = !!(result && typeof result === 'object' && result.error);
    const rt = res ? num(res.timestamp) : undefined;
    const c = {
      kind: 'command', t, pageId: l.pageId, method: l.method, params: p, result, failed,
      duration: rt !== undefined && t ? Math.max(0, rt - t) : undefined, answered: !!res,
      truncated: !!((l.request && l.request.rawBody) || (res && res.rawBody)),
    };
    c.search = (c.method + ' ' + str(p, 2000)).toLowerCase();
    this.commands.push(c);
    if (l.method === 'DOM.setFileInputFiles' && Array.isArray(p.files)) {
      for (const f of p.files) this.uploads.push({ kind: 'upload', t, name: str(f, 500) });
    }
  }
}

// fmtBytes and fmtMs are the lists' number formats.
export function fmtBytes(n) {
  if (n === undefined) return '';
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' kB';
  return (n / 1024 / 1024).toFixed(1) + ' MB';
}

export function fmtMs(ms) {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return Math.round(ms) + ' ms';
  return (ms / 1000).toFixed(2) + ' s';
}

// fmtClock writes a playhead offset as m:ss.
export function fmtClock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  return m + ':' + String(s % 60).padStart(2, '0');
}
