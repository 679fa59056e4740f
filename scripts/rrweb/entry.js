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
  let queue = [];
  let timer = 0;
  const flush = () => {
    timer = 0;
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    try {
      send(JSON.stringify(batch));
    } catch (e) {
      // The binding is gone (target detached); nothing to report to.
    }
  };
  record({
    emit(event) {
      queue.push(event);
      // Snapshots go at once; small events wait up to 100 ms to travel together.
      if (event.type === 2 || event.type === 4 || queue.length >= 200) flush();
      else if (!timer) timer = setTimeout(flush, 100);
    },
  });
  addEventListener('pagehide', flush, true);
  addEventListener('visibilitychange', flush, true);
})();
