// Browser sign-in through the test's identity provider, in Debian's Chromium: the
// console's "Sign in with your organisation account", then GraphiQL, which sends itself
// to sign-in when it holds no token. In GraphiQL the signed-in token must reach both
// kinds of request it makes: HTTP, and its WebSocket client's `connection_init`.
// GraphiQL's own bundle (from unpkg) is stood in for by graphql-ws's browser build, the
// client GraphiQL's fetcher creates with the page's `wsConnectionParams`; nothing else
// leaves this host. Prints one JSON line with what it saw.
//
//   node signin.mjs BASE_URL REDIRECT_ORIGIN
//   REDIRECT_ORIGIN is the origin of the server's registered callback (the provider sends
//   the browser there); requests to it are answered with a redirect to BASE_URL.
//   env: CHROMIUM (default /usr/bin/chromium)

import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const [base, redirectOrigin] = process.argv.slice(2);
const seen = { problems: [] };
const problem = (what) => seen.problems.push(what);
const wsClient = readFileSync(new URL('./node_modules/graphql-ws/umd/graphql-ws.min.js', import.meta.url), 'utf8');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext();
// The registered callback's host stands for this server, as DNS would in a deployment.
await context.route(`${redirectOrigin}/**`, (r) => {
  const u = new URL(r.request().url());
  r.fulfill({ status: 302, headers: { location: `${base}${u.pathname}${u.search}` } });
});
const STAND_INS = {
  'react.development.js': 'window.React = { createElement: (...a) => a };',
  'react-dom.development.js': 'window.ReactDOM = { createRoot: () => ({ render: () => {} }) };',
  'graphiql.min.js': `${wsClient}\nwindow.GraphiQL = { createFetcher: (o) => { window.graphiqlFetcher = o; return () => null; } };`,
};
await context.route('https://unpkg.com/**', (r) => {
  const name = new URL(r.request().url()).pathname.split('/').pop();
  const body = STAND_INS[name];
  if (name.endsWith('.css')) return r.fulfill({ status: 200, contentType: 'text/css', body: '' });
  if (body === undefined) return r.fulfill({ status: 404, body: '' });
  return r.fulfill({ status: 200, contentType: 'application/javascript', body });
});

function watch(page, name) {
  page.on('pageerror', (e) => problem(`${name}: an uncaught error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problem(`${name}: console error: ${m.text()}`); });
}

// The console: its sign-in page offers the provider; one click, and back signed in.
const console_ = await context.newPage();
watch(console_, 'console');
await console_.goto(`${base}/console/`);
await console_.waitForSelector('#sso', { timeout: 15000 });
await console_.click('#sso');
await console_.waitForSelector('.who', { timeout: 15000 });
seen.console = {
  who: (await console_.textContent('.who')).trim(),
  url: console_.url(),
  stored: await console_.evaluate(() => Boolean(sessionStorage.getItem('nhigov.console.token'))),
};

// GraphiQL, in a tab of its own (so nothing in it yet): sent to sign-in, and back.
const graphiql = await context.newPage();
watch(graphiql, 'graphiql');
await graphiql.goto(`${base}/`);
await graphiql.waitForFunction(() => window.graphiqlFetcher, null, { timeout: 15000 });
seen.graphiql = { url: graphiql.url() };
Object.assign(seen.graphiql, await graphiql.evaluate(async () => {
  const o = window.graphiqlFetcher;
  const post = async (query, variables = {}) => (await fetch(o.url, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }),
  })).json();
  const http = await post('{ me { email } }');
  // As GraphiQL's fetcher makes it: createClient({ url, connectionParams }).
  const client = graphqlWs.createClient({ url: o.subscriptionUrl, connectionParams: o.wsConnectionParams, retryAttempts: 0 });
  const once = (query, variables) => new Promise((resolve) => {
    const out = [];
    client.subscribe({ query, variables }, {
      next: (v) => out.push(v),
      error: (e) => resolve({ error: e && e.code ? `closed ${e.code}` : String(e && e.message || e) }),
      complete: () => resolve({ results: out }),
    });
  });
  const wsQuery = await once('{ me { email } }');
  // A live subscription: the case's events, while a note is attached over HTTP (again
  // until the first event comes, as the subscription starts on the server's time).
  const opened = await post('mutation { openCase(input: { title: "Signed in from GraphiQL", severity: LOW }) { id } }');
  const caseId = opened.data && opened.data.openCase.id;
  let event = null;
  const live = new Promise((resolve) => {
    const stop = client.subscribe({ query: 'subscription($c: ID!) { caseEvents(caseId: $c) { kind actor { email } } }', variables: { c: caseId } }, {
      next: (v) => { event = v; stop(); resolve(); },
      error: (e) => { event = { error: e && e.code ? `closed ${e.code}` : String(e && e.message || e) }; resolve(); },
      complete: () => resolve(),
    });
  });
  for (let i = 0; i < 20 && !event; i += 1) {
    await post('mutation($c: ID!) { attachEvidence(caseId: $c, input: { kind: NOTE, content: "seen live", source: "graphiql" }) { id } }', { c: caseId });
    await Promise.race([live, new Promise((r) => setTimeout(r, 250))]);
  }
  await client.dispose();
  return { options: { subscriptionUrl: o.subscriptionUrl, wsConnectionParams: o.wsConnectionParams || null }, http, wsQuery, caseId, event };
}));

await browser.close();
console.log(JSON.stringify(seen));
