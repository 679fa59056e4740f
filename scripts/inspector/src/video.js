// The inspector's video replay: the session's recorded pages as HLS (hls.js), read
// through the dashboard (/ui/api/sessions/{id}/replays/{pageId}, the page's token in
// X-Dashboard-Token). inspector.js loads this script only when the session has replays
// and puts them in #video's data-pages.
import Hls from 'hls.js';

const root = document.getElementById('inspector');
const box = document.getElementById('video');
const select = document.getElementById('video-page');
const video = document.getElementById('video-player');
const pages = JSON.parse(box.dataset.pages || '[]');
const src = (p) => `${root.dataset.root}ui/api/sessions/${encodeURIComponent(root.dataset.session)}/replays/${encodeURIComponent(p.pageId)}`;
let hls = null;

function show(p) {
  if (hls) hls.destroy();
  hls = new Hls({ xhrSetup: (xhr) => xhr.setRequestHeader('X-Dashboard-Token', root.dataset.token) });
  hls.on(Hls.Events.MANIFEST_PARSED, () => (box.dataset.ready = '1'));
  hls.on(Hls.Events.ERROR, (_, d) => {
    if (d.fatal) box.dataset.error = String(d.details);
  });
  hls.loadSource(src(p));
  hls.attachMedia(video);
}

if (pages.length && Hls.isSupported()) {
  for (const p of pages) {
    const o = document.createElement('option');
    o.value = p.pageId;
    o.textContent = `page ${p.pageId} · ${new Date(p.startTimeMs).toISOString().slice(11, 19)}`;
    select.appendChild(o);
  }
  select.addEventListener('change', () => show(pages.find((p) => p.pageId === select.value)));
  box.hidden = false;
  show(pages[0]);
}
