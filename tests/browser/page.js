// What flame.js and timeline.js share: Debian's headless chromium
// (puppeteer-core) opens an HTML report in a 1400x900 window, drive(page, out)
// fills out with what a user sees, and out is printed as JSON with every page
// error and console error in out.errors.
'use strict';
const puppeteer = require('puppeteer-core');

async function show(page_path, profile, drive) {
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
    await drive(page, out);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
}

module.exports = {
  run(page_path, profile, drive) {
    show(page_path, profile, drive).catch(e => { console.error(e); process.exit(1); });
  },
};
