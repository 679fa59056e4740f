// The recorder browserd injects into every page of a recorded session. It runs in an
// isolated world (Page.addScriptToEvaluateOnNewDocument worldName), so that nothing it
// defines — the rrweb code, its state, the binding it reports through — is visible to
// the page's own scripts. Events go to browserd in batches through the CDP binding
// "browserdRecord" (Runtime.addBinding, same world).
import { record } from 'rrweb';

(() => {
  // One recorder per document, in the top frame only: rrweb records same-origin
  // iframes from there, and a second recorder's snapshots would corrupt the stream.
  // The mark is the document, not a flag: a tab's initial about:blank keeps its
  // window (and this world's globals) when it navigates to a same-origin page.
  if (window !== window.top || window.browserdRecorderDocument === document) return;
  window.browserdRecorderDocument = document;
  const send = window.browserdRecord;
  if (typeof send !== 'function') return;
  // Limits browserd sets (internal/recorder, recorderConfig) for the CDP messages it
  // reads; the defaults are those of its default 8 MiB message limit.
  const cfg = globalThis.browserdRecorderConfig || {};
  const maxEventChars = cfg.maxEventChars || 1 << 20;
  const flushChars = cfg.flushChars || 1 << 19;
  const maxTextChars = cfg.maxTextChars || 1 << 17;
  let queue = []; // events as JSON text
  let queued = 0; // their characters
  let timer = 0;
  const flush = () => {
    timer = 0;
    if (queue.length === 0) return;
    const batch = '[' + queue.join(',') + ']';
    queue = [];
    queued = 0;
    try {
      send(batch);
    } catch (e) {
      // The binding is gone (target detached); nothing to report to.
    }
  };
  // rrweb's own start waits for the load event and takes its full snapshot and sets up
  // its observers inside it, which delays the end of the load event, and with it every
  // navigation a client waits for (Playwright's goto waits for 'load'). The recorder
  // starts outside it (startWhenLoaded). The DomContentLoaded and Load events rrweb
  // would have emitted are queued with their times.
  const queueEvent = (type) => {
    queue.push(JSON.stringify({ type, data: {}, timestamp: Date.now() }));
    queued += queue[queue.length - 1].length;
    // Before the start, the snapshot's flush takes it along.
    if (stop && !timer) timer = setTimeout(flush, 100);
  };
  let stop = null; // of the running rrweb recorder
  let root = null; // the documentElement it recorded
  const start = () => {
    if (stop) return;
    root = document.documentElement;
    stop = record({
      emit(event) {
        let json = JSON.stringify(event);
        if (json.length > maxEventChars) {
          // Too large for browserd to read: a marker takes its place, so that a replay
          // shows the gap.
          json = JSON.stringify({
            type: 5,
            timestamp: event.timestamp,
            data: { tag: 'browserd.eventDropped', payload: { type: event.type, chars: json.length, limitChars: maxEventChars } },
          });
        }
        if (queued > 0 && queued + json.length > flushChars) flush();
        queue.push(json);
        queued += json.length;
        // Snapshots go at once; small events wait up to 100 ms to travel together.
        if (event.type === 2 || event.type === 4 || queue.length >= 200 || queued >= flushChars) flush();
        else if (!timer) timer = setTimeout(flush, 100);
      },
      // Every text node goes through maskTextFn, which keeps text as it is but cuts a
      // huge one (a page setting textContent to megabytes), so that snapshots and
      // mutations stay recordable.
      maskTextSelector: '*',
      maskTextFn: (text) => (text.length > maxTextChars ? text.slice(0, maxTextChars) + '…[truncated by browserd]' : text),
      // rrweb's default, said here: a password field's value never leaves the page.
      maskInputOptions: { password: true },
    });
    // Again after a document.open(), which removed them.
    addEventListener('pagehide', flush, true);
    addEventListener('visibilitychange', flush, true);
  };
  // startWhenLoaded starts the recorder once the document is parsed, in a task of its
  // own; at once when now is asked for (the first run of this script, on a document
  // that is already complete: nobody waits for its load event any more).
  const startWhenLoaded = (now) => {
    if (document.readyState === 'complete') {
      if (now) start();
      else setTimeout(start, 0);
      return;
    }
    // The snapshot is taken as soon as the document is parsed, in idle time while the
    // page waits for its subresources (images, styles, frames): then it lies outside
    // both the load event and a client's next navigation, which comes right after the
    // load event (it used to land inside that navigation's commit). What the page
    // changes after it, rrweb's observers record. Without idle time before the load
    // event, the load event's task starts it.
    const early = () => requestIdleCallback(start, { timeout: 50 });
    if (document.readyState === 'loading') {
      addEventListener(
        'DOMContentLoaded',
        () => {
          queueEvent(0);
          early();
        },
        { capture: true, once: true },
      );
    } else {
      early();
    }
    addEventListener(
      'load',
      () => {
        queueEvent(1);
        setTimeout(start, 0);
      },
      { once: true }, // not capture: a subresource's load reaches the window only then
    );
  };
  startWhenLoaded(true);
  // document.open() (Playwright's setContent) empties this same document, removes its
  // event listeners (rrweb's among them) and parses new content into it: no new
  // document, so this script does not run again. A new root element is the sign: the
  // recorder starts over, with a full snapshot of the new content.
  new MutationObserver(() => {
    const el = document.documentElement;
    if (!stop || !el || el === root) return; // not started yet, or the same document
    flush();
    stop();
    stop = null;
    root = el;
    startWhenLoaded(false);
  }).observe(document, { childList: true });
  addEventListener('pagehide', flush, true);
  addEventListener('visibilitychange', flush, true);
})();
