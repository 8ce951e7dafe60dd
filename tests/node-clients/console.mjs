// Drives the console in a real headless Chromium (Debian's, through playwright-core's
// CDP client; no browser download) as an investigator would, checks each page for
// sideways scrolling and keyboard focus, saves a screenshot of each, and prints one JSON
// line with what it saw for the Rust test to compare with the API's own answers.
//
//   node console.mjs BASE_URL OUT_DIR CASE_ID
//   env: INVESTIGATOR_TOKEN, VIEWER_TOKEN, CHROMIUM (default /usr/bin/chromium)

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, outDir, caseId] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const seen = { pages: {}, problems: [] };
const problem = (what) => seen.problems.push(what);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
page.on('request', (r) => { if (!r.url().startsWith(base)) problem(`an external fetch: ${r.url()}`); });
page.on('pageerror', (e) => problem(`an uncaught error: ${e.message}`));
page.on('console', (m) => {
  // The browser logs the 401 the sign-out step provokes; anything else is a fault
  // (a Content-Security-Policy violation is logged here too).
  if (m.type() === 'error' && !m.text().includes('status of 401')) problem(`console error: ${m.text()}`);
});

/** At 1280x800 nothing scrolls sideways, and Tab reaches every control, each showing focus. */
async function check(name) {
  await page.waitForTimeout(100);
  const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (sideways > 0) problem(`${name}: the page scrolls sideways by ${sideways}px`);
  const controls = await page.evaluate(() => {
    const all = [...document.querySelectorAll('a[href], button, input, select, textarea')].filter((el) => !el.disabled && el.getClientRects().length > 0);
    all.forEach((el, i) => el.setAttribute('data-control', String(i)));
    return all.length;
  });
  await page.evaluate(() => { if (document.activeElement) document.activeElement.blur(); });
  await page.focus('body').catch(() => {});
  const reached = new Set();
  // A date-time field takes a Tab stop for each of its parts.
  for (let i = 0; i < controls + 30 && reached.size < controls; i += 1) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || !el.getAttribute('data-control')) return null;
      const cs = getComputedStyle(el);
      let ring = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0;
      const shape = el.querySelector && el.querySelector('.shape');
      if (shape) ring = ring && getComputedStyle(shape).strokeWidth === '4px';
      return { id: el.getAttribute('data-control'), ring, what: el.outerHTML.slice(0, 90) };
    });
    if (!f) continue;
    reached.add(f.id);
    if (!f.ring) problem(`${name}: no visible focus on ${f.what}`);
  }
  if (reached.size < controls) problem(`${name}: Tab reached ${reached.size} of ${controls} controls`);
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
  seen.pages[name] = { controls, sideways };
}

const until = (hashPrefix) => page.waitForFunction((p) => location.hash.startsWith(p), hashPrefix);

async function signIn(token) {
  await page.goto(`${base}/console`);
  await until('#/signin');
  await page.waitForSelector('#token');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await until('#/search');
}

try {
  // Sign in: the page starts at sign-in without a token.
  const resp = await page.goto(`${base}/console`);
  seen.csp = resp.headers()['content-security-policy'] || null;
  await until('#/signin');
  await page.waitForSelector('#token');
  await check('signin');
  await signIn(process.env.INVESTIGATOR_TOKEN);

  // Search by name.
  await page.fill('#q', 'gh-actions-deploy');
  await page.click('form[role=search] button');
  await page.waitForSelector('main .card ul.plain li');
  seen.search = await page.$$eval('main ul.plain li a', (as) => as.map((a) => a.textContent));
  await check('search');

  // The NHI's page, then its blast radius.
  await page.click('main ul.plain li a >> text=gh-actions-deploy-token');
  await until('#/node/');
  await page.waitForSelector('main h1 .badge');
  seen.node = await page.evaluate(() => ({ id: decodeURIComponent(location.hash.slice('#/node/'.length)), title: document.querySelector('main h1').textContent }));
  await check('node');
  await page.click('main a >> text=Blast radius');
  await until('#/blast/');
  await page.waitForSelector('svg[data-origin]');
  seen.blast = await page.evaluate(() => ({
    origin: document.querySelector('svg[data-origin]').getAttribute('data-origin'),
    nodes: [...document.querySelectorAll('svg [data-node]')].map((n) => n.getAttribute('data-node')),
    edges: [...document.querySelectorAll('svg [data-edge]')].map((e) => ({ id: e.getAttribute('data-edge'), from: e.getAttribute('data-from'), to: e.getAttribute('data-to') })),
    ungovernedDrawn: document.querySelectorAll('svg path.edge.ungoverned').length,
    totals: document.querySelector('aside h2').textContent,
  }));
  await check('blast-radius');

  // A drawn node opens its page.
  const far = seen.blast.nodes.find((n) => n !== seen.blast.origin);
  await page.click(`svg [data-node="${far}"]`);
  await until('#/node/');
  seen.clicked = decodeURIComponent(await page.evaluate(() => location.hash.slice('#/node/'.length)));

  // Who can reach one of the systems it reaches.
  const system = seen.blast.nodes.find((n) => n.startsWith('system:'));
  await page.goto(`${base}/console#/reach/${encodeURIComponent(system)}`);
  await page.waitForSelector('svg[data-mode=reach]');
  seen.reach = await page.$$eval('svg [data-node]', (ns) => ns.map((n) => n.getAttribute('data-node')));
  await check('who-can-reach');

  // The path from the token to the system whose reach was just drawn.
  await page.goto(`${base}/console#/path/${encodeURIComponent(seen.blast.origin)}/${encodeURIComponent(system)}`);
  await page.waitForSelector('svg[data-origin]');
  seen.path = {
    to: system,
    nodes: await page.$$eval('svg [data-node]', (ns) => ns.map((n) => n.getAttribute('data-node'))),
    edges: await page.$$eval('svg [data-edge]', (es) => es.map((e) => e.getAttribute('data-edge'))),
  };
  await check('path');

  // The case: its timeline, then evidence attached through the page.
  await page.goto(`${base}/console#/case/${encodeURIComponent(caseId)}`);
  await page.waitForSelector('ol.timeline li');
  await page.waitForSelector('svg[data-origin]');
  const before = await page.$$eval('ol.timeline li', (li) => li.length);
  await check('case');
  await page.fill('#ev-content', 'Key found in a public gist; screenshot in ticket SEC-1234.');
  await page.click('#attach');
  await page.waitForFunction((n) => document.querySelectorAll('ol.timeline li').length > n, before);
  seen.timeline = { before, after: await page.$$eval('ol.timeline li', (li) => li.length) };

  // A snapshot of the blast radius joins the timeline as evidence.
  await page.waitForSelector('#snapshot');
  await page.click('#snapshot');
  await page.waitForFunction((n) => document.querySelectorAll('ol.timeline li').length > n, seen.timeline.after);
  seen.timeline.afterSnapshot = await page.$$eval('ol.timeline li', (li) => li.length);

  // Containment: a REVOKE_NHI request filed from the case.
  await page.fill('#contain-why', 'Contain the leaked deploy token while the case is open.');
  await page.click('#contain');
  await page.waitForFunction(() => [...document.querySelectorAll('main .card')].some((c) => c.textContent.includes('revoke nhi')));
  seen.contained = true;

  // A viewer's attempt is refused, and the page says so in the API's words.
  await page.click('#nav button');
  await signIn(process.env.VIEWER_TOKEN);
  await page.goto(`${base}/console#/case/${encodeURIComponent(caseId)}`);
  await page.waitForSelector('#ev-content');
  await page.fill('#ev-content', 'An attempt by a viewer.');
  await page.click('#attach');
  await page.waitForSelector('form .error');
  seen.refused = await page.$eval('form .error', (e) => e.textContent);
  await page.screenshot({ path: join(outDir, 'refused.png'), fullPage: true });

  // A token the server refuses sends the user back to sign-in.
  await page.evaluate(() => sessionStorage.setItem('nhigov.console.token', 'not-a-token'));
  await page.goto(`${base}/console#/search?q=gh`);
  await until('#/signin');
  await page.waitForSelector('main [role=alert]');
  seen.afterRefusedToken = await page.$eval('main [role=alert]', (e) => e.textContent);

  // Browser sign-in hands the provider's token over in the fragment: the console keeps
  // it in the tab and takes it out of the address bar.
  await page.goto(`${base}/console/#token=${encodeURIComponent(process.env.INVESTIGATOR_TOKEN)}`);
  await until('#/search');
  await page.waitForSelector('#nav .who');
  seen.fragmentSignIn = {
    url: page.url(),
    who: await page.$eval('#nav .who', (e) => e.textContent),
    kept: await page.evaluate(() => sessionStorage.getItem('nhigov.console.token') === null ? 'nothing' : 'a token'),
  };
} catch (e) {
  problem(`the walk stopped: ${e.message}`);
  await page.screenshot({ path: join(outDir, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
