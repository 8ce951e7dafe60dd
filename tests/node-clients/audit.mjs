// The GraphQL-over-HTTP audit of graphql-http (the reference implementation's own
// conformance suite), run against a live nhigov: node audit.mjs URL, token in $TOKEN.
// Prints every audit; exits 1 when a MUST rule fails, and lists SHOULD warnings.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const token = process.env.TOKEN;
if (!url || !token) {
  console.error('usage: TOKEN=... node audit.mjs http://127.0.0.1:8080/graphql');
  process.exit(2);
}
// Every request carries the bearer token; nhigov answers nothing else.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn });
let failed = 0;
let warned = 0;
for (const r of results) {
  const mark = r.status === 'ok' ? 'ok  ' : r.status === 'warn' ? 'WARN' : 'FAIL';
  if (r.status === 'error') failed++;
  if (r.status === 'warn') warned++;
  console.log(`${mark} ${r.id} ${r.name}${r.status === 'ok' ? '' : ': ' + r.reason}`);
}
console.log(`${results.length} audits: ${results.length - failed - warned} ok, ${warned} warnings (SHOULD), ${failed} failures (MUST)`);
process.exit(failed ? 1 : 0);
