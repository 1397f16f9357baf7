// Drives an HTML flame graph in Debian's headless chromium (puppeteer-core)
// and prints what a user sees as JSON, for tests/integration/test_browser.py:
// the first view of a 1400x900 window, a click on the deepest frame, and a
// search. Usage: node flame.js PAGE.html REGEX PROFILE_DIR
'use strict';
const {run} = require('./page.js');

function frames() {
  const chart = document.getElementById('chart').getBoundingClientRect();
  return Array.from(document.querySelectorAll('#chart .f')).map(e => {
    const r = e.getBoundingClientRect();
    return {text: e.textContent, cls: e.className, top: r.top, bottom: r.bottom,
            left: r.left - chart.left, width: r.width, row: Math.round((r.top - chart.top) / 17)};
  });
}

const [page_path, regex, profile] = process.argv.slice(2);
run(page_path, profile, async (page, out) => {
  // the first view: what a 1400x900 window shows without scrolling
  out.first = await page.evaluate(() => {
    const root = document.querySelector('#chart .root').getBoundingClientRect();
    const search = document.getElementById('search').getBoundingClientRect();
    return {scrollY: window.scrollY, height: window.innerHeight,
            root: {top: root.top, bottom: root.bottom, width: root.width},
            search: {top: search.top, bottom: search.bottom},
            chartWidth: document.getElementById('chart').clientWidth};
  });
  out.first.frames = await page.evaluate(frames);
  // zoom: click the deepest frame drawn (a leaf)
  const leaf = out.first.frames.reduce((a, b) => (b.row > a.row ? b : a));
  out.clicked = leaf;
  await page.evaluate(text => {
    const all = Array.from(document.querySelectorAll('#chart .f'));
    let best = null;
    for (const e of all)
      if (e.textContent === text && (!best || e.offsetTop > best.offsetTop)) best = e;
    best.click();
  }, leaf.text);
  out.zoom = await page.evaluate(frames);
  // search: every match coloured, the outermost matches' bytes counted
  await page.evaluate(() => document.getElementById('reset').click());
  await page.type('#search', regex);
  out.search = await page.evaluate(() => {
    const m = document.getElementById('matched');
    return {text: m.textContent, bytes: Number(m.getAttribute('data-bytes')),
            hits: document.querySelectorAll('#chart .f.hit').length,
            total: JSON.parse(document.getElementById('data').textContent).tree.v};
  });
});
