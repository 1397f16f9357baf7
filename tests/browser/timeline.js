// Drives an HTML timeline in Debian's headless chromium (puppeteer-core) and
// prints what a user sees as JSON, for tests/integration/test_browser.py:
// the mouse over the middle of the plot (the values under it, in #info) and
// the shapes drawn. Usage: node timeline.js PAGE.html PROFILE_DIR
'use strict';
const {run} = require('./page.js');

const [page_path, profile] = process.argv.slice(2);
run(page_path, profile, async (page, out) => {
  const box = await page.evaluate(() => {
    const r = document.querySelector('#chart svg').getBoundingClientRect();
    return {left: r.left, top: r.top, width: r.width, height: r.height};
  });
  // the middle of the plot, half way down
  await page.mouse.move(box.left + 72 + (box.width - 82) * 0.5, box.top + box.height / 2);
  out.info = await page.evaluate(() => document.getElementById('info').textContent);
  out.title = await page.evaluate(() => document.getElementById('title').textContent);
  out.bands = await page.evaluate(() => document.querySelectorAll('#chart polygon.band').length);
});
