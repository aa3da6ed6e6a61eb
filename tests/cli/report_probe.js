// Injected into a copy of report.html by test_report_browser.py: measures the rendered charts and
// writes the findings as JSON into the element pre#probe-result (read back with chromium --dump-dom).
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message || e)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.map(String).join(" ")); __consoleError(...args); };

const TOLERANCE = 1; // px of overlap forgiven (anti-aliased edges)

function box(el, name) {
  const r = el.getBoundingClientRect();
  return { name, left: r.left, right: r.right, top: r.top, bottom: r.bottom, w: r.width, h: r.height };
}

function overlaps(a, b) {
  const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  return x > TOLERANCE && y > TOLERANCE;
}

function visible(b) { return b.w > 0 && b.h > 0; }

function labelsOf(gd) {
  const found = [];
  gd.querySelectorAll("g.xtick > text, g.ytick > text").forEach((t) => {
    if (t.textContent.trim()) found.push(box(t, `tick "${t.textContent.trim()}"`));
  });
  gd.querySelectorAll(".infolayer > g[class^='g-x'], .infolayer > g[class^='g-y']").forEach((g) => {
    const text = g.querySelector("text");
    if (text && text.textContent.trim()) found.push(box(text, `axis title "${text.textContent.trim()}"`));
  });
  gd.querySelectorAll("g.legend > rect.bg").forEach((r) => found.push(box(r, "legend")));
  gd.querySelectorAll("g.colorbar").forEach((g) => found.push(box(g, "colour bar")));
  return found.filter(visible);
}

function areasOf(gd) {
  const found = [];
  gd.querySelectorAll(".draglayer .nsewdrag").forEach((r, i) => found.push(box(r, `plot area ${i + 1}`)));
  gd.querySelectorAll("g.rangeslider-container > rect.rangeslider-bg").forEach((r) => found.push(box(r, "range slider")));
  return found.filter(visible);
}

function axisProblems(gd) {
  const problems = [];
  let count = 0;
  for (const [key, ax] of Object.entries(gd._fullLayout)) {
    if (!/^[xy]axis\d*$/.test(key) || ax.visible === false || ax.showticklabels === false) continue;
    count += 1;
    const own = (gd.layout[key] || {}).title; // not _fullLayout's, which holds an editing placeholder
    const title = (own && (own.text || (typeof own === "string" ? own : ""))) || "";
    if (!title) problems.push(`${gd.id} ${key}: no title`);
    else if (ax.type !== "category" && !/\(.+\)/.test(title)) problems.push(`${gd.id} ${key}: "${title}" has no unit`);
  }
  return [count, problems];
}

function probe() {
  const result = { errors: window.__errors, charts: 0, ids: [], empty: [], overlaps: [], untitled: [], axes: 0, measured: 0 };
  document.querySelectorAll(".js-plotly-plot").forEach((gd) => {
    result.charts += 1;
    result.ids.push(gd.id);
    const svg = gd.querySelector(".main-svg");
    if (!gd._fullData || !gd._fullData.length || !svg || svg.getBoundingClientRect().height < 100) result.empty.push(gd.id);
    const labels = labelsOf(gd);
    const areas = areasOf(gd);
    result.measured += labels.length;
    labels.forEach((a, i) => {
      labels.slice(i + 1).forEach((b) => { if (overlaps(a, b)) result.overlaps.push(`${gd.id}: ${a.name} / ${b.name}`); });
      areas.forEach((b) => { if (overlaps(a, b)) result.overlaps.push(`${gd.id}: ${a.name} over ${b.name}`); });
    });
    const [count, problems] = axisProblems(gd);
    result.axes += count;
    result.untitled.push(...problems);
  });
  const blocks = Array.from(document.body.children).map((el, i) => box(el, `${el.tagName.toLowerCase()} #${i}`)).filter(visible);
  blocks.forEach((a, i) => blocks.slice(i + 1).forEach((b) => { if (overlaps(a, b)) result.overlaps.push(`page: ${a.name} / ${b.name}`); }));
  result.overlaps = result.overlaps.slice(0, 50);
  result.page_height = document.documentElement.scrollHeight;
  const pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
}

window.addEventListener("load", () => setTimeout(probe, 3000));
