// Drives the gallery in Debian's chromium (headless, through playwright-core)
// for tests/system/test_gallery.py, which gives the plan as JSON on stdin
// and checks the report this prints as JSON (and the bucket, the table and
// the trash) afterwards. Every wait here is bounded.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const plan = JSON.parse(readFileSync(0, 'utf8'));
const require = createRequire(plan.npm + '/node_modules/');
const { chromium } = require('playwright-core');

const report = { steps: [], dialogs: [], console: [], csp: [], pageErrors: [] };
const sha = (b) => createHash('sha256').update(b).digest('hex');
const step = (name, data) => report.steps.push({ name, ...data });

const browser = await chromium.launch({
  executablePath: plan.chromium,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 60000,
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(30000);
  page.on('dialog', async (d) => { report.dialogs.push(d.message()); await d.dismiss(); });
  page.on('console', (m) => {
    report.console.push(m.type() + ': ' + m.text());
    if (/Content[- ]Security[- ]Policy/i.test(m.text())) report.csp.push(m.text());
  });
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));

  const captions = () => page.$$eval('#grid li .caption', (cs) => cs.map((c) => c.textContent));
  // Every page of the current view: scroll to the end until no cursor.
  async function all() {
    for (let i = 0; i < 200; i++) {
      await page.waitForFunction(() => !document.querySelector('#grid').dataset.loading);
      const more = await page.$eval('#more', (b) => !b.hidden);
      if (!more) break;
      await page.click('#more');
      await page.waitForTimeout(100);
    }
    return captions();
  }
  // Each thumbnail scrolled into view (lazy) and decoded: its size.
  async function thumbs() {
    const n = await page.$$eval('#grid li', (l) => l.length);
    const sizes = [];
    for (let i = 0; i < n; i++) {
      const li = page.locator('#grid li').nth(i);
      await li.scrollIntoViewIfNeeded();
      const img = li.locator('img');
      if (await img.count() === 0) { sizes.push(null); continue; }
      await page.waitForFunction((e) => e.complete, await img.elementHandle(), { timeout: 15000 });
      sizes.push(await img.evaluate((e) => [e.naturalWidth, e.naturalHeight]));
    }
    return sizes;
  }
  async function settle() {
    await page.waitForFunction(() => document.querySelector('#grid').dataset.loading !== '1');
    await page.waitForTimeout(300);
    await page.waitForFunction(() => document.querySelector('#grid').dataset.loading !== '1');
  }

  // 1. the one-time link logs in and lands on the grid
  await page.goto(plan.login);
  await page.waitForSelector('#grid li');
  step('login', { url: page.url() });

  // 2. the root: every page, every thumbnail
  const root = await all();
  step('root', { names: root, thumbs: await thumbs(),
    folders: await page.$$eval('#folders button', (b) => b.map((x) => x.textContent)),
    injected: await page.$$eval('img[src="x"], script:not([src])', (l) => l.length) });
  // the top of the grid, every thumbnail there decoded
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForFunction(() => [...document.querySelectorAll('#grid img')].slice(0, 24).every((i) => i.complete && i.naturalWidth > 0));
  await page.screenshot({ path: plan.shots + '/gallery-grid.png' });

  // 3. folders and breadcrumbs
  await page.click('#folders button:text-is("trips")');
  await settle();
  const trips = await all();
  step('trips', { names: trips, thumbs: await thumbs(),
    crumbs: await page.$$eval('#crumbs a', (a) => a.map((x) => x.textContent)) });
  await page.click('#folders button:text-is("alps")');
  await settle();
  const alps = await all();
  step('alps', { names: alps, thumbs: await thumbs(),
    crumbs: await page.$$eval('#crumbs a', (a) => a.map((x) => x.textContent)) });
  await page.click('#crumbs a >> nth=0');
  await settle();
  const odd = plan.oddFolder;
  await page.click(`#folders button:text-is(${JSON.stringify(odd)})`);
  await settle();
  step('odd', { names: await all(), thumbs: await thumbs() });
  await page.click('#crumbs a >> nth=0');
  await settle();

  // 4. search, then type
  await page.fill('#q', plan.search);
  await page.waitForTimeout(400);
  await settle();
  step('search', { names: await all() });
  await page.fill('#q', 'alert');
  await page.waitForTimeout(400);
  await settle();
  step('search-odd', { names: await all() });
  await page.fill('#q', '');
  await page.waitForTimeout(400);
  await settle();
  await page.selectOption('#type', 'image/png');
  await settle();
  step('type', { names: await all() });
  await page.selectOption('#type', '');
  await settle();

  // 5. the detail view: every attribute, the original from S3
  await page.click(`#grid li[data-name=${JSON.stringify(plan.detail)}]`);
  await page.waitForFunction(() => {
    const i = document.getElementById('d-img');
    return i.src && i.complete && i.naturalWidth > 0 && document.querySelector('#d-attrs tr');
  });
  const src = await page.$eval('#d-img', (i) => i.src);
  const bytes = Buffer.from(await (await fetch(src)).arrayBuffer());
  step('detail', { src, sha256: sha(bytes),
    attrs: await page.$$eval('#d-attrs tr', (r) => r.map((x) => [x.cells[0].textContent, x.cells[1].textContent])) });
  await page.screenshot({ path: plan.shots + '/gallery-detail.png' });

  // 6. a share link for 3 s, fetched by curl before and after
  await page.fill('#d-expires', '3s');
  await page.click('#d-share');
  await page.waitForFunction(() => document.getElementById('d-link').value.startsWith('http'));
  const link = await page.$eval('#d-link', (i) => i.value);
  const curl = () => {
    const out = execFileSync('curl', ['-s', '-o', plan.tmp + '/shared', '-w', '%{http_code}', link]);
    return [String(out), sha(readFileSync(plan.tmp + '/shared'))];
  };
  const before = curl();
  await page.waitForTimeout(5000);
  const after = curl();
  step('share', { link, before, after, note: await page.$eval('#d-link-note', (p) => p.textContent) });
  await page.click('#d-close');

  // 7. an upload through the file input into trips/
  await page.click('#folders button:text-is("trips")');
  await settle();
  await page.setInputFiles('#file', plan.upload);
  await page.waitForFunction(() => [...document.querySelectorAll('#uploads li')].some((l) => /synced|error|failed/.test(l.textContent)), null, { timeout: 90000 });
  step('upload', { text: await page.$eval('#uploads li', (l) => l.textContent),
    progress: await page.$eval('#uploads progress', (p) => p.value) });
  await settle();

  // 7b. and one dropped on the page
  const dropped = await page.evaluateHandle((b64) => {
    const dt = new DataTransfer();
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], 'dropped.jpg', { type: 'image/jpeg' }));
    return dt;
  }, readFileSync(plan.upload).toString('base64'));
  await page.dispatchEvent('#drop', 'dragover', { dataTransfer: dropped });
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped });
  await page.waitForFunction(() => { const l = document.querySelectorAll('#uploads li')[1]; return l && /synced|error|failed/.test(l.textContent); }, null, { timeout: 90000 });
  step('drop', { text: await page.$eval('#uploads li:nth-child(2)', (l) => l.textContent) });
  await settle();

  // 8. a delete, confirmed in the page
  await page.click(`#grid li[data-name=${JSON.stringify(plan.del)}]`);
  await page.waitForSelector('#d-attrs tr');
  await page.click('#d-delete');
  await page.click('#d-delete-yes');
  await page.waitForFunction(() => !document.getElementById('detail').open);
  step('delete', { left: await captions() });

  // 9. the status bar stays live: the uploads' thumbnails show up in it
  await page.waitForFunction(() => /thumbnails 302/.test(document.getElementById('status').textContent), null, { timeout: 60000 });
  step('status', { text: await page.$eval('#status', (f) => f.textContent.replace(/\s+/g, ' ').trim()) });

  // 10. the CSP is enforced: markup with an inline handler, put in by
  // hand, does not run, and the browser says why
  const cspSeen = report.csp.length;
  await page.evaluate(() => {
    const d = document.createElement('div');
    d.innerHTML = '<img src="data:," onerror="window.pwned = 1">';
    document.body.append(d);
  });
  await page.waitForTimeout(1000);
  step('csp-probe', { pwned: await page.evaluate(() => window.pwned === 1),
    violations: report.csp.splice(cspSeen) });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report));
