// nhigov console: pages over the public GraphQL API, with the token the user signed in
// with (through the identity provider) or pasted.
// It builds every element with the DOM (never HTML from data), draws the blast radius
// as SVG by hand, and fetches nothing but this origin's /graphql and /auth/config.
//
// Why a hand-made layered drawing rather than a graph library: a traversal is already
// layered (each node has its hop distance), so one column per hop and one row per node
// is the whole layout, and it stays readable and testable (every node and edge carries
// its id as a data attribute) without a dependency to vendor.

const TOKEN = 'nhigov.console.token';
const app = document.getElementById('app');
const nav = document.getElementById('nav');

// ------------------------------------------------------------------ API

class SignedOut extends Error {}

/** Errors as the API words them: code, message, and the rule or field it names. */
class ApiError extends Error {
  constructor(errors) {
    super(errors.map(describe).join('; '));
    this.errors = errors;
  }
}

function describe(e) {
  const x = e.extensions || {};
  const parts = [x.code ? `${x.code}: ${e.message}` : e.message];
  if (x.rule) parts.push(`(rule ${x.rule})`);
  if (x.field) parts.push(`(field ${x.field})`);
  if (x.reference) parts.push(`(reference ${x.reference})`);
  return parts.join(' ');
}

let flash = null;
let me = null;

function token() {
  return sessionStorage.getItem(TOKEN);
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN);
  me = null;
  flash = message || null;
  if (location.hash !== '#/signin') location.hash = '#/signin';
  else route();
}

/** POST a GraphQL operation; a refused token sends the user back to sign-in. */
async function gql(query, variables = {}) {
  const resp = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token() || ''}` },
    body: JSON.stringify({ query, variables }),
  });
  let body = null;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError([{ message: `HTTP ${resp.status} without a GraphQL answer` }]);
  }
  const unauthenticated = (body.errors || []).some((e) => e.extensions && e.extensions.code === 'UNAUTHENTICATED');
  if (resp.status === 401 || unauthenticated) {
    signOut('The server refused the token (expired, revoked or mistyped): sign in again.');
    throw new SignedOut();
  }
  return body;
}

/** The data of an answer, or its errors thrown. */
async function must(query, variables) {
  const body = await gql(query, variables);
  if (body.errors && body.errors.length) throw new ApiError(body.errors);
  return body.data;
}

// ------------------------------------------------------------------ DOM

function build(el, attrs, kids) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

const h = (tag, attrs, ...kids) => build(document.createElement(tag), attrs, kids);
const SVG_NS = 'http://www.w3.org/2000/svg';
const s = (tag, attrs, ...kids) => build(document.createElementNS(SVG_NS, tag), attrs, kids);

const link = (hash, ...kids) => h('a', { href: hash }, ...kids);
const nodeHash = (id) => `#/node/${encodeURIComponent(id)}`;
const badge = (text, cls) => h('span', { class: `badge ${cls || ''}` }, text);
const errorBox = (e) => h('div', { class: 'error', role: 'alert' }, e instanceof Error ? e.message : String(e));
const when = (t) => (t ? new Date(t).toISOString().replace('T', ' ').slice(0, 16) + ' UTC' : '—');
const lower = (v) => (v ? String(v).toLowerCase().replace(/_/g, ' ') : '—');

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

function list(items, render, empty = 'none') {
  if (!items || !items.length) return h('p', { class: 'notice' }, empty);
  return h('ul', { class: 'plain' }, items.map((i) => h('li', {}, render(i))));
}

// A relation that pages (the first RELATED of it): its items, and how many there are in all.
const RELATED = 100;
const related = (fields) => `(first: ${RELATED}) { totalCount edges { node { ${fields} } } }`;
function connectionList(conn, render, empty = 'none') {
  const items = conn ? conn.edges.map((e) => e.node) : [];
  const more = conn && conn.totalCount > items.length ? h('p', { class: 'notice' }, `first ${items.length} of ${conn.totalCount}`) : null;
  return [list(items, render, empty), more];
}

function card(title, ...kids) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...kids);
}

// ------------------------------------------------------------------ routing

let generation = 0;

const routes = [
  [/^#\/signin$/, signInPage],
  [/^#\/search(?:\?(.*))?$/, searchPage],
  [/^#\/node\/([^/?]+)$/, nodePage],
  [/^#\/blast\/([^/?]+)(?:\?(.*))?$/, (id, q) => reachPage('blast', id, q)],
  [/^#\/reach\/([^/?]+)(?:\?(.*))?$/, (id, q) => reachPage('reach', id, q)],
  [/^#\/path\/([^/?]+)\/([^/?]+)(?:\?(.*))?$/, pathPage],
  [/^#\/case\/([^/?]+)$/, casePage],
];

async function route() {
  const mine = ++generation;
  const hash = location.hash || '#/search';
  if (!token() && hash !== '#/signin') {
    location.hash = '#/signin';
    return;
  }
  renderNav();
  const found = routes.find(([re]) => re.test(hash));
  let content;
  if (!found) {
    content = [h('h1', {}, 'No such page'), link('#/search', 'Search')];
  } else {
    const [re, page] = found;
    const args = hash.match(re).slice(1).map((a) => (a === undefined ? undefined : decodeURIComponent(a)));
    app.replaceChildren(h('p', { class: 'notice', role: 'status' }, 'Loading…'));
    try {
      content = await page(...args);
    } catch (e) {
      if (e instanceof SignedOut) return;
      content = [h('h1', {}, 'Could not load this page'), errorBox(e)];
    }
  }
  if (mine !== generation) return;
  app.replaceChildren(...[content].flat());
  document.title = `${(app.querySelector('h1') || {}).textContent || 'nhigov'} · nhigov console`;
  app.focus();
}

async function renderNav() {
  if (!token()) {
    nav.replaceChildren();
    return;
  }
  if (!me) {
    try {
      me = (await must('{ me { name email roles } }')).me;
    } catch (e) {
      if (e instanceof SignedOut) return;
      me = { name: '?', email: '', roles: [] };
    }
  }
  nav.replaceChildren(
    link('#/search', 'Search'),
    h('span', { class: 'who' }, `${me.name} · ${me.roles.map(lower).join(', ')}`),
    h('button', { type: 'button', class: 'secondary', onclick: () => signOut('Signed out.') }, 'Sign out'),
  );
}

// ------------------------------------------------------------------ sign-in

async function signInPage() {
  const input = h('input', { type: 'password', id: 'token', name: 'token', class: 'wide', autocomplete: 'off', required: true, 'aria-describedby': 'token-help' });
  const status = h('div', { role: 'status' });
  const message = flash;
  flash = null;
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(TOKEN, input.value.trim());
        me = null;
        try {
          await must('{ me { name } }');
          location.hash = '#/search';
        } catch (e) {
          if (e instanceof SignedOut) return;
          sessionStorage.removeItem(TOKEN);
          status.replaceChildren(errorBox(e));
        }
      },
    },
    h('label', { for: 'token' }, 'API token or sign-in token (JWT)'),
    input,
    h('p', { id: 'token-help', class: 'notice' }, 'Kept in this tab only: closing the tab forgets it. The console can do only what the API lets this token do.'),
    h('button', { type: 'submit' }, 'Sign in'),
    status,
  );
  const provider = await browserSignIn();
  return [h('h1', {}, 'Sign in'), message ? h('p', { class: 'notice warn', role: 'alert' }, message) : null, provider, form];
}

/** A card that signs in through the organisation's identity provider, when one is configured. */
async function browserSignIn() {
  try {
    const resp = await fetch('/auth/config');
    const cfg = await resp.json();
    if (!cfg.browserSignIn) return null;
    return card(null,
      h('a', { class: 'button', id: 'sso', href: `${cfg.login}?to=console` }, 'Sign in with your organisation account'),
      h('p', { class: 'notice' }, 'Or paste a token below.'));
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ search

const NODE_FIELDS = `fragment N on Node { __typename id
  ... on Nhi { name kind environment status }
  ... on Secret { name kind }
  ... on System { name kind criticality environment }
  ... on Person { name email }
  ... on Team { name } }`;

function nodeSummary(n) {
  const kind = n.kind ? lower(n.kind) : n.email || '';
  return [link(nodeHash(n.id), n.name), ' ', badge(n.__typename), ' ', h('span', { class: 'notice' }, kind), n.criticality ? [' ', badge(n.criticality, n.criticality === 'TIER0' ? 'bad' : '')] : null];
}

async function searchPage(query) {
  const q = (new URLSearchParams(query || '').get('q') || '').trim();
  const input = h('input', { type: 'search', id: 'q', name: 'q', class: 'wide', value: q, placeholder: 'a name, a fingerprint, or provider:external-id', 'aria-label': 'Search' });
  const form = h(
    'form',
    { class: 'inline card', role: 'search', onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/search?q=${encodeURIComponent(input.value.trim())}`; } },
    h('label', { for: 'q' }, 'Find an NHI, secret, system, person or team', input),
    h('button', { type: 'submit' }, 'Search'),
  );
  const out = [h('h1', {}, 'Search'), form];
  if (!q) return out;
  const colon = q.indexOf(':');
  const vars = {
    q,
    fp: /^[\x21-\x7e]{8,256}$/.test(q),
    ext: colon > 0 && colon < q.length - 1,
    provider: colon > 0 ? q.slice(0, colon) : '',
    externalId: colon > 0 ? q.slice(colon + 1) : '',
  };
  const body = await gql(
    `query Search($q: String!, $fp: Boolean!, $ext: Boolean!, $provider: String!, $externalId: String!) {
      byFingerprint: secretByFingerprint(fingerprint: $q) @include(if: $fp) { ...N }
      byExternalId: nhiByExternalId(provider: $provider, externalId: $externalId) @include(if: $ext) { ...N }
      byName: search(prefix: $q, first: 50) { ...N }
    } ${NODE_FIELDS}`,
    vars,
  );
  const data = body.data || {};
  // The exact lookups are guesses at what was typed: only the name search's errors count.
  const errors = (body.errors || []).filter((e) => (e.path || [])[0] === 'byName' || !body.data);
  if (errors.length) out.push(errorBox(new ApiError(errors)));
  const seen = new Set();
  const hits = [data.byFingerprint, data.byExternalId, ...(data.byName || [])].filter((n) => n && !seen.has(n.id) && seen.add(n.id));
  out.push(card(`${hits.length} found for “${q}”`, list(hits, nodeSummary, 'Nothing by that name, fingerprint or external id.')));
  return out;
}

// ------------------------------------------------------------------ node page

async function nodePage(id) {
  const owners = 'owners { __typename id name }';
  const data = await must(
    `query Node($id: ID!) { node(id: $id) { __typename id
      ... on Nhi { name kind provider externalId environment status description lastUsedAt createdAt ${owners}
        secrets { id name kind rotationOverdue expiresAt }
        access { id privilege governed expiresAt system { id name criticality environment } }
        stale orphaned overPrivileged expiringSoon }
      ... on Secret { name kind fingerprint issuedAt lastRotatedAt expiresAt rotationDueAt rotationOverdue ${owners}
        heldBy { id name kind } authenticatesTo { id name criticality } storedIn { id name } }
      ... on System { name kind environment criticality description ${owners}
        accessors${related('id privilege governed expiresAt nhi { id name kind }')} dependsOn { id name } dependents { id name } }
      ... on Person { name email roles active machine teams { id name } owns${related('__typename id name')} }
      ... on Team { name description members${related('id name')} owns${related('__typename id name')} } } }`,
    { id },
  );
  const n = data.node;
  if (!n) return [h('h1', {}, 'Not found'), h('p', {}, `No node has the id ${id}.`)];
  const out = [h('h1', {}, n.name, ' ', badge(n.__typename))];
  const named = (x) => link(nodeHash(x.id), x.name);
  const governed = (a) => (a.governed ? badge('approved', 'good') : badge('ungoverned', 'bad'));
  const walkable = ['Nhi', 'Secret', 'System'].includes(n.__typename);
  if (walkable) {
    out.push(
      h('p', { class: 'controls' },
        n.__typename !== 'System' ? link(`#/blast/${encodeURIComponent(id)}`, 'Blast radius') : null,
        link(`#/reach/${encodeURIComponent(id)}`, 'Who can reach it'),
        pathForm(id)),
    );
  }
  const grid = [];
  if (n.__typename === 'Nhi') {
    grid.push(card('Facts', facts([['Kind', lower(n.kind)], ['Provider', n.provider], ['External id', n.externalId], ['Environment', lower(n.environment)], ['Status', lower(n.status)], ['Last used', when(n.lastUsedAt)], ['Created', when(n.createdAt)], ['Description', n.description]])));
    const risks = [['stale', n.stale], ['orphaned', n.orphaned], ['over-privileged', n.overPrivileged], ['credential expiring soon', n.expiringSoon]].filter(([, v]) => v);
    grid.push(card('Risk facts', risks.length ? h('p', {}, risks.map(([k]) => [badge(k, 'bad'), ' '])) : h('p', { class: 'notice' }, 'none')));
    grid.push(card('Owners', list(n.owners, named, 'no owner')));
    grid.push(card('Secrets', list(n.secrets, (x) => [named(x), ' ', x.rotationOverdue ? badge('rotation overdue', 'bad') : null])));
    grid.push(card('Access', list(n.access, (a) => [a.system ? named(a.system) : '?', ' ', badge(lower(a.privilege)), ' ', governed(a), a.expiresAt ? ` expires ${when(a.expiresAt)}` : ''])));
  } else if (n.__typename === 'Secret') {
    grid.push(card('Facts', facts([['Kind', lower(n.kind)], ['Fingerprint', h('code', {}, n.fingerprint)], ['Issued', when(n.issuedAt)], ['Last rotated', when(n.lastRotatedAt)], ['Rotation due', when(n.rotationDueAt)], ['Expires', when(n.expiresAt)]])));
    grid.push(card('Risk facts', n.rotationOverdue ? badge('rotation overdue', 'bad') : h('p', { class: 'notice' }, 'none')));
    grid.push(card('Owners', list(n.owners, named, 'no owner')));
    grid.push(card('Held by', list(n.heldBy, named)));
    grid.push(card('Authenticates to', list(n.authenticatesTo, named)));
    grid.push(card('Stored in', list(n.storedIn, named)));
  } else if (n.__typename === 'System') {
    grid.push(card('Facts', facts([['Kind', lower(n.kind)], ['Environment', lower(n.environment)], ['Criticality', lower(n.criticality)], ['Description', n.description]])));
    grid.push(card('Owners', list(n.owners, named, 'no owner')));
    grid.push(card('Accessed by', connectionList(n.accessors, (a) => [a.nhi ? named(a.nhi) : '?', ' ', badge(lower(a.privilege)), ' ', governed(a)])));
    grid.push(card('Depends on', list(n.dependsOn, named)));
    grid.push(card('Depended on by', list(n.dependents, named)));
  } else if (n.__typename === 'Person') {
    grid.push(card('Facts', facts([['E-mail', n.email], ['Roles', n.roles.map(lower).join(', ') || 'none'], ['Active', n.active ? 'yes' : 'no (left)'], ['Machine principal', n.machine ? 'yes' : 'no']])));
    grid.push(card('Teams', list(n.teams, named)));
    grid.push(card('Owns', connectionList(n.owns, named)));
  } else {
    grid.push(card('Facts', facts([['Description', n.description]])));
    grid.push(card('Members', connectionList(n.members, named)));
    grid.push(card('Owns', connectionList(n.owns, named)));
  }
  out.push(h('div', { class: 'grid' }, grid));
  if (walkable) out.push(await alertsAndCases(id));
  return out;
}

function pathForm(from) {
  const to = h('input', { id: 'path-to', name: 'to', placeholder: 'system:…', 'aria-label': 'Path to (a node id)' });
  return h('form', { class: 'inline', onsubmit: (ev) => { ev.preventDefault(); if (to.value.trim()) location.hash = `#/path/${encodeURIComponent(from)}/${encodeURIComponent(to.value.trim())}`; } },
    to, h('button', { type: 'submit', class: 'secondary' }, 'Path to'));
}

/** Open alerts and cases about a node; a role that may not read them is told so. */
async function alertsAndCases(id) {
  const body = await gql(
    `query Around($id: ID!) {
      alerts(first: 50, filter: { subjectId: $id, status: NEW }) { nodes { id title severity source lastSeen } }
      cases(first: 50, filter: { subjectId: $id, open: true }) { nodes { id title severity status dueAt overdue } } }`,
    { id },
  );
  if (!body.data) return card('Open alerts and cases', errorBox(new ApiError(body.errors || [])));
  return h('div', { class: 'grid' },
    card('Open alerts', list(body.data.alerts.nodes, (a) => [badge(a.severity, a.severity === 'CRITICAL' ? 'bad' : ''), ' ', a.title, h('span', { class: 'notice' }, ` · ${a.source} · ${when(a.lastSeen)}`)])),
    card('Open cases', list(body.data.cases.nodes, (c) => [link(`#/case/${encodeURIComponent(c.id)}`, c.title), ' ', badge(lower(c.status)), c.overdue ? [' ', badge('overdue', 'bad')] : null])));
}

// ------------------------------------------------------------------ traversals

const REACH_FIELDS = `fragment R on Reach { origin maxHops asOf truncated
  totals { nodes byKind { key count } byCriticality { key count } byMaxPrivilege { key count } }
  reached(first: 1000) { id hops inactive governed criticality maxPrivilege node { __typename id name }
    path { edge kind from to privilege governed expiresAt } } }`;

const NAMED = `fragment O on Node { __typename id ... on Nhi { name } ... on Secret { name } ... on System { name criticality } }`;

async function reachPage(mode, id, query) {
  const params = new URLSearchParams(query || '');
  const hops = Math.min(6, Math.max(1, Number(params.get('hops')) || 3));
  const asOf = params.get('asOf') || null;
  const field = mode === 'blast' ? 'blastRadius(from: $id' : 'whoCanReach(target: $id';
  const data = await must(
    `query Reach($id: ID!, $hops: Int!, $asOf: DateTime) { reach: ${field}, maxHops: $hops, asOf: $asOf) { ...R } origin: node(id: $id) { ...O } } ${REACH_FIELDS} ${NAMED}`,
    { id, hops, asOf },
  );
  const origin = data.origin || { id, name: id, __typename: '' };
  const title = mode === 'blast' ? `Blast radius of ${origin.name}` : `Who can reach ${origin.name}`;
  const hopSelect = h('select', { id: 'hops', name: 'hops' }, [1, 2, 3, 4, 5, 6].map((n) => h('option', { value: n, selected: n === hops }, `${n} hop${n > 1 ? 's' : ''}`)));
  const asOfInput = h('input', { type: 'datetime-local', id: 'asof', name: 'asOf', value: asOf ? asOf.slice(0, 16) : '' });
  const go = (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams({ hops: hopSelect.value });
    if (asOfInput.value) p.set('asOf', new Date(`${asOfInput.value}Z`).toISOString());
    location.hash = `#/${mode}/${encodeURIComponent(id)}?${p}`;
  };
  const controls = h('form', { class: 'controls', onsubmit: go },
    h('label', { for: 'hops' }, 'Hops', hopSelect),
    h('label', { for: 'asof' }, 'As of (UTC; empty for now)', asOfInput),
    h('button', { type: 'submit' }, 'Show'),
    link(nodeHash(id), `Open ${origin.name}`),
    mode === 'blast' ? link(`#/reach/${encodeURIComponent(id)}`, 'Who can reach it') : origin.__typename !== 'System' ? link(`#/blast/${encodeURIComponent(id)}`, 'Its blast radius') : null);
  return [h('h1', {}, title), controls, reachView(data.reach, origin, mode, new Set())];
}

/** A traversal drawn, with its totals beside it. */
function reachView(reach, origin, mode, added) {
  const drawn = drawReach(reach, origin, mode, added);
  const notices = [];
  if (reach.truncated) {
    notices.push(h('p', { class: 'notice warn', role: 'note' }, `${reach.totals.nodes} nodes are within ${reach.maxHops} hops; the server's node cap lists only the nearest ${reach.reached.length}, and only those are drawn. The totals count them all.`));
  }
  if (drawn.hidden) {
    notices.push(h('p', { class: 'notice warn', role: 'note' }, `${drawn.hidden} of ${reach.reached.length} reached nodes are not drawn (at most ${MAX_PER_COLUMN} per hop); the totals count them all.`));
  }
  const count = (rows) => list(rows, (c) => `${lower(c.key)}: ${c.count}`);
  const totals = h('aside', { class: 'card', 'aria-label': 'Totals' },
    h('h2', {}, `${reach.totals.nodes} reached`),
    reach.asOf ? h('p', { class: 'notice' }, `As of ${when(reach.asOf)}`) : h('p', { class: 'notice' }, 'Now'),
    h('h2', {}, 'By kind'), count(reach.totals.byKind),
    h('h2', {}, 'By criticality'), count(reach.totals.byCriticality),
    h('h2', {}, 'By highest privilege'), count(reach.totals.byMaxPrivilege));
  return h('div', { class: 'split' }, h('div', { class: 'card' }, notices, legend(), drawn.figure), totals);
}

function legend() {
  return h('p', { class: 'legend' },
    h('span', {}, h('span', { class: 'swatch identity' }), 'NHI'),
    h('span', {}, h('span', { class: 'swatch secret' }), 'secret'),
    ['tier0', 'tier1', 'tier2', 'tier3'].map((t) => h('span', {}, h('span', { class: `swatch ${t}` }), `system ${t}`)),
    h('span', {}, '- - - red: access nobody approved'),
    h('span', {}, '····· orange: expires within 30 days'));
}

const MAX_PER_COLUMN = 40;
const COL_W = 230;
const ROW_H = 44;
const TOP = 34;
const RANK = { TIER0: 0, TIER1: 1, TIER2: 2, TIER3: 3 };

function shape(kind, x, y, criticality) {
  const fill = kind === 'Nhi' ? 'var(--identity)' : kind === 'Secret' ? 'var(--secret)' : `var(--${(criticality || 'TIER3').toLowerCase()})`;
  if (kind === 'Nhi') return s('circle', { class: 'shape', cx: x, cy: y, r: 11, fill });
  if (kind === 'Secret') return s('polygon', { class: 'shape', points: `${x},${y - 12} ${x + 12},${y} ${x},${y + 12} ${x - 12},${y}`, fill });
  return s('rect', { class: 'shape', x: x - 11, y: y - 11, width: 22, height: 22, rx: 3, fill });
}

const short = (name) => (name.length > 26 ? `${name.slice(0, 25)}…` : name);

/**
 * One column per hop, the origin on the left; within a column, the most critical first.
 * Edges are the steps of the witness paths, each drawn once.
 */
function drawReach(reach, origin, mode, added) {
  const columns = new Map([[0, [{ id: origin.id, name: origin.name, kind: origin.__typename, criticality: origin.criticality || null, origin: true }]]]);
  let hidden = 0;
  const sorted = [...reach.reached].sort((a, b) => a.hops - b.hops || (RANK[a.criticality] ?? 9) - (RANK[b.criticality] ?? 9) || (a.node?.name || a.id).localeCompare(b.node?.name || b.id));
  for (const r of sorted) {
    const col = columns.get(r.hops) || [];
    if (col.length >= MAX_PER_COLUMN) {
      hidden += 1;
      continue;
    }
    col.push({ id: r.id, name: r.node ? r.node.name : r.id, kind: r.node ? r.node.__typename : '', criticality: r.criticality, inactive: r.inactive, hops: r.hops });
    columns.set(r.hops, col);
  }
  const place = new Map();
  const rows = Math.max(...[...columns.values()].map((c) => c.length));
  const maxHop = Math.max(...columns.keys());
  const height = TOP + rows * ROW_H + 10;
  for (const [hop, col] of columns) {
    const offset = (rows - col.length) * ROW_H / 2;
    col.forEach((n, i) => place.set(n.id, { ...n, x: 30 + hop * COL_W, y: TOP + offset + i * ROW_H + ROW_H / 2 }));
  }
  const steps = new Map();
  for (const r of reach.reached) for (const step of r.path) steps.set(step.edge, step);
  const soon = Date.now() + 30 * 86400e3;
  const edges = [];
  for (const step of steps.values()) {
    const a = place.get(step.from);
    const b = place.get(step.to);
    if (!a || !b) continue;
    const ungoverned = step.governed === false;
    const expiring = step.expiresAt && new Date(step.expiresAt).getTime() < soon;
    const cls = ['edge', ungoverned ? 'ungoverned' : '', expiring ? 'expiring' : '', added.has(step.to) || added.has(step.from) ? 'added' : ''].join(' ').trim();
    const mx = (a.x + b.x) / 2;
    const dir = b.x >= a.x ? 1 : -1;
    const far = dir > 0 ? b : a;
    const label = [lower(step.privilege || step.kind), ungoverned ? 'ungoverned' : '', expiring ? `expires ${when(step.expiresAt).slice(0, 10)}` : ''].filter(Boolean).join(' · ');
    edges.push(s('g', { 'data-edge': step.edge, 'data-from': step.from, 'data-to': step.to },
      s('path', { class: cls, d: `M${a.x + 12 * dir},${a.y} C${mx},${a.y} ${mx},${b.y} ${b.x - 14 * dir},${b.y}`, 'marker-end': 'url(#arrow)' }),
      // Beside its end further from the origin: that node's own witness edge, on a row of
      // its own, so labels never collide.
      s('text', { class: `edge-label ${ungoverned ? 'ungoverned' : ''}`, x: far.x - 18, y: far.y - 8, 'text-anchor': 'end' }, label)));
  }
  const nodes = [...place.values()].map((n) => {
    const cls = ['node', n.origin ? 'origin' : '', n.inactive ? 'inactive' : '', added.has(n.id) ? 'added' : ''].join(' ').trim();
    return s('a', { href: nodeHash(n.id), class: cls, 'data-node': n.id, 'aria-label': `${n.name} (${n.kind || 'node'}${n.origin ? ', origin' : `, ${n.hops} hop${n.hops > 1 ? 's' : ''}`})` },
      s('title', {}, `${n.name}${n.inactive ? ' (inactive: the walk does not pass through it)' : ''}`),
      shape(n.kind, n.x, n.y, n.criticality),
      s('text', { x: n.x + 16, y: n.y + 4 }, short(n.name)));
  });
  const hopLabels = [...columns.keys()].map((hop) => s('text', { class: 'hop', x: 30 + hop * COL_W - 10, y: 16 }, hop === 0 ? (mode === 'blast' ? 'origin' : 'target') : `hop ${hop}`));
  const width = 30 + maxHop * COL_W + 220;
  const figure = h('figure', { class: 'drawing', 'aria-label': mode === 'blast' ? 'What it reaches, hop by hop' : 'Who reaches it, hop by hop' },
    // Its own size at most: a short path is not blown up to the page's width.
    s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'data-origin': origin.id, 'data-mode': mode },
      s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 8 8', refX: 7, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L8,4 L0,8 z', fill: '#9aa3b2' }))),
      hopLabels, edges, nodes));
  return { figure, hidden };
}

async function pathPage(from, to, query) {
  const hops = Math.min(6, Math.max(1, Number(new URLSearchParams(query || '').get('hops')) || 4));
  const data = await must(
    `query Path($from: ID!, $to: ID!, $hops: Int!) { path(from: $from, to: $to, maxHops: $hops) { edge kind from to privilege governed expiresAt }
      a: node(id: $from) { ...O } b: node(id: $to) { ...O } } ${NAMED}`,
    { from, to, hops },
  );
  const a = data.a || { id: from, name: from, __typename: '' };
  const b = data.b || { id: to, name: to, __typename: '' };
  const out = [h('h1', {}, `Path from ${a.name} to ${b.name}`)];
  if (!data.path) return [...out, h('p', { class: 'notice', role: 'note' }, `No path within ${hops} hops.`)];
  // A path is a traversal whose every node is one hop further: draw it the same way.
  const ids = data.path.map((st) => st.to);
  const names = await must(`query Names(${ids.map((_, i) => `$n${i}: ID!`).join(', ')}) { ${ids.map((_, i) => `n${i}: node(id: $n${i}) { ...O }`).join(' ')} } ${NAMED}`, Object.fromEntries(ids.map((id, i) => [`n${i}`, id])));
  const reached = data.path.map((st, i) => ({ id: st.to, hops: i + 1, inactive: false, criticality: (names[`n${i}`] || {}).criticality || null, node: names[`n${i}`], path: data.path.slice(0, i + 1) }));
  const reach = { maxHops: hops, truncated: false, asOf: null, reached, totals: { nodes: reached.length, byKind: [], byCriticality: [], byMaxPrivilege: [] } };
  return [...out, h('div', { class: 'card' }, legend(), drawReach(reach, a, 'blast', new Set()).figure)];
}

// ------------------------------------------------------------------ case page

async function casePage(id) {
  const data = await must(
    `query Case($id: ID!) { case(id: $id) { id title description status severity openedAt dueAt overdue refs
      assignee { name } subjects { __typename id name }
      requests { id kind status subjectId requestedAt } } }`,
    { id },
  );
  const c = data.case;
  // The timeline holds decisions and evidence, which not every role may read.
  let timeline;
  try {
    const t = await must('query Timeline($id: ID!) { case(id: $id) { timeline { at actor event record summary } } }', { id });
    timeline = h('ol', { class: 'timeline' }, t.case.timeline.map((e) => h('li', { 'data-record': e.record }, h('time', { datetime: e.at }, when(e.at)), h('span', { class: 'what' }, h('strong', {}, lower(e.event)), ` · ${e.actor} · ${e.summary}`))));
  } catch (e) {
    if (e instanceof SignedOut) throw e;
    timeline = errorBox(e);
  }
  if (!c) return [h('h1', {}, 'Not found'), h('p', {}, `No case has the id ${id}.`)];
  const walkable = c.subjects.filter((x) => x.__typename === 'Nhi' || x.__typename === 'Secret');
  const out = [
    h('h1', {}, c.title),
    h('div', { class: 'grid' },
      card('Case', facts([['Status', lower(c.status)], ['Severity', lower(c.severity)], ['Assignee', c.assignee ? c.assignee.name : 'nobody'], ['Opened', when(c.openedAt)], ['Due', [when(c.dueAt), c.overdue ? [' ', badge('overdue', 'bad')] : null]], ['References', c.refs.join(', ') || '—']]), c.description ? h('p', {}, c.description) : null),
      card('Subjects', list(c.subjects, (x) => [link(nodeHash(x.id), x.name), ' ', badge(x.__typename)])),
      card('Requests', list(c.requests, (r) => [badge(lower(r.kind)), ' ', lower(r.status), h('span', { class: 'notice' }, ` · ${when(r.requestedAt)}`)]))),
    actions(c, walkable),
    card('Timeline', timeline),
  ];
  if (walkable.length) {
    try {
      out.push(await caseBlastRadius(c, walkable[0]));
    } catch (e) {
      if (e instanceof SignedOut) throw e;
      out.push(card('Blast radius', errorBox(e)));
    }
  }
  return out;
}

async function caseBlastRadius(c, subject) {
  const data = await must(
    `query CaseReach($id: ID!, $from: ID!) { case(id: $id) { blastRadius(from: $from) { added removed now { ...R } atOpening { totals { nodes } } } } } ${REACH_FIELDS}`,
    { id: c.id, from: subject.id },
  );
  const br = data.case.blastRadius;
  const added = new Set(br.added);
  return h('section', {},
    h('h2', {}, `Blast radius of ${subject.name}: when the case opened against now`),
    h('p', { role: 'note' }, `${br.atOpening.totals.nodes} reached when the case opened, ${br.now.totals.nodes} now: ${br.added.length} added (outlined green), ${br.removed.length} no longer reached.`),
    br.removed.length ? card('No longer reached', list(br.removed, (rid) => link(nodeHash(rid), rid))) : null,
    reachView(br.now, subject, 'blast', added));
}

/** The buttons an investigator uses, each calling the API's own mutation. */
function actions(c, walkable) {
  const result = (el) => h('div', { role: 'status', class: 'result' }, el);
  const submit = (status, run) => async (ev) => {
    ev.preventDefault();
    status.replaceChildren(h('p', { class: 'notice' }, 'Sending…'));
    try {
      const done = await run();
      status.replaceChildren(h('p', {}, done));
    } catch (e) {
      if (!(e instanceof SignedOut)) status.replaceChildren(errorBox(e));
    }
  };

  const kind = h('select', { id: 'ev-kind', name: 'kind' }, ['NOTE', 'TICKET_REFERENCE', 'TOKEN_METADATA', 'ROTATION_STATUS', 'ACCESS_HISTORY', 'REPOSITORY_HISTORY', 'VAULT_CONFIG_SNAPSHOT'].map((k) => h('option', { value: k }, lower(k))));
  const content = h('textarea', { id: 'ev-content', name: 'content', required: true });
  const source = h('input', { id: 'ev-source', name: 'source', value: 'console', required: true });
  const evStatus = result();
  const evidence = h('form', { class: 'card', 'aria-label': 'Attach evidence', onsubmit: submit(evStatus, async () => {
    const d = await must('mutation Attach($c: ID!, $i: EvidenceInput!) { attachEvidence(caseId: $c, input: $i) { id sha256 } }', { c: c.id, i: { kind: kind.value, content: content.value, source: source.value } });
    setTimeout(route, 600);
    return `Evidence attached (SHA-256 ${d.attachEvidence.sha256.slice(0, 16)}…).`;
  }) },
  h('h2', {}, 'Attach evidence'), h('label', { for: 'ev-kind' }, 'Kind', kind), h('label', { for: 'ev-content' }, 'Content', content), h('label', { for: 'ev-source' }, 'Source', source), h('button', { type: 'submit', id: 'attach' }, 'Attach evidence'), evStatus);

  const forms = [evidence];
  if (walkable.length) {
    const pick = (fid) => h('select', { id: fid, name: 'subject' }, walkable.map((x) => h('option', { value: x.id }, x.name)));
    const snapFrom = pick('snap-from');
    const snapStatus = result();
    forms.push(h('form', { class: 'card', 'aria-label': 'Snapshot the blast radius', onsubmit: submit(snapStatus, async () => {
      const d = await must('mutation Snap($c: ID!, $f: ID!) { snapshotBlastRadius(caseId: $c, from: $f) { id sha256 } }', { c: c.id, f: snapFrom.value });
      setTimeout(route, 600);
      return `Snapshot kept as evidence (SHA-256 ${d.snapshotBlastRadius.sha256.slice(0, 16)}…).`;
    }) }, h('h2', {}, 'Snapshot the blast radius'), h('label', { for: 'snap-from' }, 'From', snapFrom), h('button', { type: 'submit', id: 'snapshot' }, 'Take snapshot'), snapStatus));
  }
  const identities = walkable.filter((x) => x.__typename === 'Nhi');
  if (identities.length) {
    const subject = h('select', { id: 'contain-subject', name: 'subject' }, identities.map((x) => h('option', { value: x.id }, x.name)));
    const why = h('textarea', { id: 'contain-why', name: 'justification', required: true });
    const containStatus = result();
    forms.push(h('form', { class: 'card', 'aria-label': 'Request containment', onsubmit: submit(containStatus, async () => {
      const d = await must('mutation Contain($i: RequestInput!) { createRequest(input: $i) { id status } }', { i: { kind: 'REVOKE_NHI', subjectId: subject.value, caseId: c.id, justification: why.value } });
      setTimeout(route, 600);
      return `Containment requested: revoke, ${lower(d.createRequest.status)}.`;
    }) }, h('h2', {}, 'Request containment'), h('p', { class: 'notice' }, 'Files a request to revoke the identity, linked to this case; an approver decides it.'),
    h('label', { for: 'contain-subject' }, 'Identity', subject), h('label', { for: 'contain-why' }, 'Justification', why), h('button', { type: 'submit', id: 'contain' }, 'Request containment'), containStatus));
  }
  return h('div', { class: 'grid' }, forms);
}

// A browser sign-in comes back with the provider's token in the fragment (see
// /auth/callback): it moves into this tab's storage and out of the address bar at once.
const returned = location.hash.match(/^#token=([^&]+)$/);
if (returned) {
  sessionStorage.setItem(TOKEN, decodeURIComponent(returned[1]));
  history.replaceState(null, '', `${location.pathname}#/search`);
}
window.addEventListener('hashchange', route);
route();
