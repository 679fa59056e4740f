// patch.mjs makes the record-only rrweb that build.sh bundles: it reads the pinned
// node_modules/rrweb/dist/rrweb.js (one file holding rrweb, rrweb-snapshot, rrdom and two
// copies of postcss) and writes a copy with the patches below. Every patch is checked: it
// must match exactly as often as said, or the build fails (a new rrweb needs them looked at
// again). Each patch says what it removes from what a page compiles and runs at document
// start, and why the recording does not need it (docs/RECORDING-PERF.md, run 8, has the
// bytes each one saves).
//
//   node patch.mjs <rrweb.js> <out.js>
import fs from 'node:fs';

const [src, out] = process.argv.slice(2);
let s = fs.readFileSync(src, 'utf8');

// replace replaces every occurrence of from (a string) and checks how many there were.
function replace(what, from, to, count) {
  const parts = s.split(from);
  if (parts.length - 1 !== count) {
    throw new Error(`patch "${what}" no longer applies: ${parts.length - 1} matches of ${JSON.stringify(from.slice(0, 80))}, ${count} expected`);
  }
  s = parts.join(to);
}

// replaceRegion replaces the text from start up to (not including) end, once.
function replaceRegion(what, start, end, to) {
  const i = s.indexOf(start);
  const j = i < 0 ? -1 : s.indexOf(end, i + start.length);
  if (i < 0 || j < 0 || s.indexOf(start, i + 1) >= 0) {
    throw new Error(`patch "${what}" no longer applies: region ${JSON.stringify(start.slice(0, 60))} … ${JSON.stringify(end.slice(0, 60))} not found once`);
  }
  s = s.slice(0, i) + to + s.slice(j);
}

// 1. The untainted-prototype check. Before it reads the DOM, rrweb checks that the page has
// not patched the prototypes it uses (Node, Element, ShadowRoot, MutationObserver) and, when
// the check fails, takes clean ones from a hidden iframe it adds to the page. In rrweb 2.2.2
// the check always fails for Element (it tests the methods querySelector/querySelectorAll as
// getters), so every recorded document got an iframe added and removed at the recorder's
// start: most of its start time (tens of ms per navigation) and a frame the page and its CDP
// clients saw come and go. The recorder runs in an isolated world, whose prototypes no page
// script can reach: they are clean, and the check is skipped. (Three copies: rrweb-snapshot,
// rrdom and @rrweb/utils each carry one.)
replace('untainted prototypes', 'if (isUntaintedAccessors && isUntaintedMethods) {', 'if (true) { // browserd: isolated world', 3);

// 2. postcss, twice (rrweb-snapshot's copy and rrdom's), about 115 KB of the 196 KB bundle,
// and all of it run at document start: each copy is a CommonJS module whose top level
// (30-odd nested modules, their classes and registrations) ran when the bundle loaded,
// because the call that runs it was not marked pure and re-export statements
// (`import_postcss.default.stringify;`) read it. Only the replayer uses postcss (rrweb-snapshot's
// adaptCssForReplay rewrites :hover and media queries for replay); recording never calls it.
// The calls are marked pure, the re-export statements go, and postcss_default becomes a
// function that loads postcss when called: esbuild then drops both copies, and a replay-side
// call, were one ever bundled, still works.
{
  const re = /^import_postcss(\$1)?\.default(\.[A-Za-z]+)?;\n/gm;
  const n = (s.match(re) || []).length;
  if (n !== 49) throw new Error(`patch "postcss re-exports" no longer applies: ${n} statements, 49 expected`);
  s = s.replace(re, '');
}
replace('postcss pure (rrweb-snapshot)', '__toESM$1((/* @__PURE__ */ __commonJSMin$1(((exports, module) => {\n\tvar AtRule', '__toESM$1(/* @__PURE__ */ (/* @__PURE__ */ __commonJSMin$1(((exports, module) => {\n\tvar AtRule', 1);
replace('postcss pure (rrdom)', '__toESM((/* @__PURE__ */ __commonJSMin(((exports, module) => {\n\tvar AtRule', '__toESM(/* @__PURE__ */ (/* @__PURE__ */ __commonJSMin(((exports, module) => {\n\tvar AtRule', 1);
replace('postcss lazy', 'var postcss_default = import_postcss$1.default;', 'var postcss_default = (...a) => import_postcss$1.default(...a); // browserd: replay only', 1);

// 3. Canvas and WebGL recording (recordCanvas, off by default and never turned on by the
// recorder): the CanvasManager hooks canvas contexts only when asked to, but its module
// created a Blob of an inline worker at document start and carried the serializers of 2D and
// WebGL calls. A CanvasManager without them takes its place; asking for recordCanvas fails
// loudly instead of recording nothing. (Canvas contents were never in browserd recordings:
// besides recordCanvas being off, the hooks would sit on the isolated world's prototypes,
// which page scripts do not call.)
replaceRegion(
  'canvas manager',
  'var CanvasManager = class {',
  '// src/record/stylesheet-manager.ts',
  `var CanvasManager = class { // browserd: record-only build, no canvas recording
	constructor(options) {
		if (options.recordCanvas) throw new Error("browserd rrweb build: recordCanvas is not included");
	}
	reset() {}
	freeze() {}
	unfreeze() {}
	lock() {}
	unlock() {}
};
`,
);

// The canvas snapshot worker (an inline worker's source, made into a Blob at document start)
// served only the CanvasManager's sampling mode.
replaceRegion('canvas worker', '// src/record/workers/image-bitmap-data-url-worker.ts?worker&inline\n', '// src/record/observers/canvas/canvas-manager.ts', '');

// 4. Cross-origin iframe recording (recordCrossOriginIframes, off by default): it needs a
// recorder inside each cross-origin iframe posting its events to the top frame, and browserd
// runs the recorder in the top frame only (same-origin iframes are recorded from there, and
// still are). The message handler and the id translation go; asking for it fails loudly.
replace(
  'cross-origin iframes (mirrors)',
  '\tcrossOriginIframeMirror = new CrossOriginIframeMirror(genId);\n',
  '\tcrossOriginIframeMirror = null; // browserd: no cross-origin iframe recording\n',
  1,
);
replace(
  'cross-origin iframes (style mirror)',
  '\t\tthis.crossOriginIframeStyleMirror = new CrossOriginIframeMirror(this.stylesheetManager.styleMirror.generateId.bind(this.stylesheetManager.styleMirror));\n',
  '',
  1,
);
replace(
  'cross-origin iframes (listener)',
  '\t\tif (this.recordCrossOriginIframes) window.addEventListener("message", this.messageHandler);\n',
  '\t\tif (this.recordCrossOriginIframes) throw new Error("browserd rrweb build: recordCrossOriginIframes is not included");\n',
  1,
);
replaceRegion('cross-origin iframes (translation)', '\thandleMessage(message) {\n', '};\n// src/record/shadow-dom-manager.ts', '\thandleMessage() {}\n');

// 5. The custom-element check. For every element it serializes (the full snapshot and each
// element a mutation adds), rrweb-snapshot asks customElements.get(tagName) inside a try. In an
// isolated world, where the recorder runs, window.customElements is null (the page's custom
// element registry belongs to the main world), so the call threw a TypeError that was caught:
// one exception per element, about 20 µs each (127 on the bench's login page, most of the
// JavaScript time of the recorder's start, and all of it on the renderer's main thread right
// when a client's next navigation wants it; docs/RECORDING-PERF.md, run 9). The result is
// unchanged — isCustomElement stays unset, as it was when the call threw — but nothing is
// thrown: without a registry, or for a name without a hyphen (which no custom element has),
// the call is not made.
replace(
  'custom elements',
  '\t\tif (customElements.get(tagName)) isCustomElement = true;\n',
  '\t\tif (customElements && tagName.includes("-") && customElements.get(tagName)) isCustomElement = true; // browserd: no exception per element\n',
  1,
);

fs.writeFileSync(out, s);
