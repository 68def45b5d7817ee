// GraphQL-over-HTTP conformance audit: runs graphql-http's `auditServer` against each target.
//
//   node tests/graphql-http/audit.mjs NAME=URL [NAME=URL ...]
//
// URL is a GraphQL endpoint (e.g. http://127.0.0.1:4000/graphql). Prints one line per audit
// (`ok` or `FAIL`, id, name; for a failure its level, the reason the audit gives, the request it
// made and the response it saw), then `NAME: passed/total` per target, and at the end
// `graphql-http: N passed, N failed` over all targets. Every result other than `ok` counts as a
// failure, including the `warn` (SHOULD) and `notice` (MAY) levels, and so does a target that
// answered fewer audits than graphql-http has (none at all, say). Exit status 1 if anything
// failed, 2 on bad arguments. With SUBGRAPH_SECRET set, every request presents it in
// x-taproom-subgraph-secret (subgraphs of the local stack require it).
import { auditServer, serverAudits } from 'graphql-http';

const REQUEST_TIMEOUT_MS = 15_000;
const BODY_LIMIT = 400;

function usage(message) {
  if (message) console.error(`audit.mjs: ${message}`);
  console.error('usage: node tests/graphql-http/audit.mjs NAME=URL [NAME=URL ...]');
  process.exit(2);
}

const targets = process.argv.slice(2).map((arg) => {
  const eq = arg.indexOf('=');
  if (eq <= 0) usage(`expected NAME=URL, got ${JSON.stringify(arg)}`);
  const name = arg.slice(0, eq);
  const url = arg.slice(eq + 1);
  try {
    new URL(url);
  } catch {
    usage(`not a URL for ${name}: ${JSON.stringify(url)}`);
  }
  return { name, url };
});
if (targets.length === 0) usage('no target given');

// What each response came from, to print next to a failure: the audits only keep the Response.
const seen = new WeakMap();

function tag(res, info) {
  seen.set(res, info);
  // A failing audit may hand back a clone of the response it read; keep the clone traceable.
  res.clone = function clone() {
    const copy = Response.prototype.clone.call(this);
    return tag(copy, info);
  };
  return res;
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

// The fetch the audits use: the global fetch with a timeout, recording the request and reading the
// body once up front (so it can be shown even after an audit has consumed it), then handing the
// audit an identical Response built from the same bytes.
async function recordingFetch(input, init = {}) {
  const url = String(input);
  const request = {
    method: init.method || 'GET',
    url,
    headers: Object.fromEntries(new Headers(init.headers || {}).entries()),
    body: init.body === undefined ? undefined : String(init.body),
  };
  const headers = new Headers(init.headers || {});
  // Subgraphs of a stack started with a secret answer only callers presenting it (the router).
  if (process.env.SUBGRAPH_SECRET) headers.set('x-taproom-subgraph-secret', process.env.SUBGRAPH_SECRET);
  const res = await fetch(input, {
    ...init,
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const body = NULL_BODY_STATUS.has(res.status) ? null : bytes;
  const copy = new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
  return tag(copy, {
    request,
    status: res.status,
    contentType: res.headers.get('content-type'),
    body: new TextDecoder('utf-8').decode(bytes),
  });
}

function clip(text) {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  return flat.length > BODY_LIMIT ? `${flat.slice(0, BODY_LIMIT)}... (${flat.length} chars)` : flat;
}

function describe(result) {
  const parts = [`[${result.status}] ${result.reason}`];
  const info = result.response && seen.get(result.response);
  if (info) {
    const { request } = info;
    const headers = Object.entries(request.headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    let req = `${request.method} ${request.url}`;
    if (headers) req += ` {${headers}}`;
    if (request.body !== undefined) req += ` body ${clip(JSON.stringify(request.body))}`;
    parts.push(`request: ${req}`);
    parts.push(
      `response: ${info.status} content-type ${info.contentType ?? '(none)'} body ${clip(JSON.stringify(info.body))}`,
    );
  } else if (result.response) {
    parts.push(`response: ${result.response.status} content-type ${result.response.headers.get('content-type') ?? '(none)'}`);
  }
  return parts.join(' | ');
}

async function runTarget({ name, url }) {
  const opts = { url, fetchFn: recordingFetch };
  try {
    return await auditServer(opts);
  } catch (err) {
    // auditServer rejects as a whole when one audit hits a fatal (non-assertion) error, such as a
    // refused connection or a timeout: run the audits one by one so the others still report.
    console.log(`${name}: auditServer failed (${err?.cause?.message ?? err?.message ?? err}); running audits one by one`);
    const results = [];
    for (const a of serverAudits(opts)) {
      try {
        results.push(await a.fn());
      } catch (e) {
        results.push({
          id: a.id,
          name: a.name,
          status: 'fatal',
          reason: `fatal error: ${e?.cause?.message ?? e?.message ?? e}`,
        });
      }
    }
    return results;
  }
}

let passed = 0;
let failed = 0;
for (const target of targets) {
  console.log(`# ${target.name} ${target.url}`);
  const results = await runTarget(target);
  let ok = 0;
  for (const r of results) {
    if (r.status === 'ok') {
      ok += 1;
      console.log(`ok   ${r.id} ${r.name}`);
    } else {
      console.log(`FAIL ${r.id} ${r.name} | ${describe(r)}`);
    }
  }
  console.log(`${target.name}: ${ok}/${results.length}`);
  passed += ok;
  failed += results.length - ok;
  // An audit that ran nothing proves nothing: every target answers every audit graphql-http has.
  const expected = serverAudits({ url: target.url, fetchFn: recordingFetch }).length;
  if (expected === 0 || results.length !== expected) {
    console.log(`FAIL ${target.name}: ${results.length} audits ran, graphql-http has ${expected}`);
    failed += 1;
  }
}
if (passed === 0) {
  console.log('FAIL no audit passed at all');
  failed += 1;
}
console.log(`graphql-http: ${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
