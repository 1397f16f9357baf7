// Drives an HTML timeline in Debian's headless chromium (puppeteer-core) and
// prints what a user sees as JSON, for tests/integration/test_browser.py:
// the mouse over the middle of the plot (the values under it, in #info) and
// the shapes drawn. Usage: node timeline.js PAGE.html PROFILE_DIR
'use strict';
const puppeteer = require('puppeteer-core');

async function main() {
  const [page_path, profile] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const out = {errors: []};
  try {
    const page = await browser.newPage();
    page.on('pageerror', e => out.errors.push(String(e)));
    page.on('console', m => { if (m.type() === 'error') out.errors.push(m.text()); });
    await page.setViewport({width: 1400, height: 900});
    await page.goto('file://' + page_path, {waitUntil: 'load'});
    const box = await page.evaluate(() => {
      const r = document.querySelector('#chart svg').getBoundingClientRect();
      return {left: r.left, top: r.top, width: r.width, height: r.height};
    });
    // the middle of the plot, half way down
    await page.mouse.move(box.left + 72 + (box.width - 82) * 0.5, box.top + box.height / 2);
    out.info = await page.evaluate(() => document.getElementById('info').textContent);
    out.title = await page.evaluate(() => document.getElementById('title').textContent);
    out.bands = await page.evaluate(() => document.querySelectorAll('#chart polygon.band').length);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch(e => { console.error(e); process.exit(1); });
