// The router's frontend features driven by @apollo/client under Node: persisted queries (a miss,
// then hits, over GET), a batch of three operations in one request, a compressed (brotli) answer,
// a router with a safelist, and a query with @defer delivered in parts. Needs a running stack and a safelisted router beside it:
// TAPROOM_ROUTER_URL, TAPROOM_SAFELIST_ROUTER_URL and TAPROOM_MANIFEST (scripts/apollo-test.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApolloClient, HttpLink, InMemoryCache, execute, gql, toPromise } from '@apollo/client/core/index.js';
import { BatchHttpLink } from '@apollo/client/link/batch-http/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';

const routerUrl = process.env.TAPROOM_ROUTER_URL;
const safelistUrl = process.env.TAPROOM_SAFELIST_ROUTER_URL;
const manifestPath = process.env.TAPROOM_MANIFEST;

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

// Node's fetch, recording each request's method and body and each answer's encoding.
function recordingFetch() {
  const calls = [];
  const fetcher = async (url, options = {}) => {
    const response = await fetch(url, options);
    calls.push({
      method: options.method ?? 'GET',
      url: String(url),
      body: options.body,
      status: response.status,
      encoding: response.headers.get('content-encoding'),
    });
    return response;
  };
  return { calls, fetch: fetcher };
}

function client(link) {
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

const CATALOG = gql`
  query Catalog($first: Int) {
    beers(first: $first) { edges { node { sku name price } } totalCount }
  }
`;

test('persisted queries: a miss, then hits, over GET', async () => {
  assert.ok(routerUrl, 'TAPROOM_ROUTER_URL must name a running router');
  const { calls, fetch } = recordingFetch();
  const link = createPersistedQueryLink({ sha256, useGETForHashedQueries: true })
    .concat(new HttpLink({ uri: `${routerUrl}/graphql`, fetch }));
  const apollo = client(link);
  // The stack is fresh: the first try (the hash alone, over GET) is a miss, answered by sending
  // the query with its hash (over POST).
  const one = await apollo.query({ query: CATALOG, variables: { first: 3 }, fetchPolicy: 'no-cache' });
  assert.equal(one.data.beers.totalCount, 43);
  assert.equal(one.data.beers.edges.length, 3);
  assert.deepEqual(calls.map((c) => c.method), ['GET', 'POST'], 'a miss, then the query with its hash');
  assert.ok(!new URL(calls[0].url).searchParams.has('query'), 'the first try sends the hash alone');
  assert.match(calls[1].body, /"query"/);
  const before = calls.length;
  const two = await apollo.query({ query: CATALOG, variables: { first: 5 }, fetchPolicy: 'no-cache' });
  assert.equal(two.data.beers.edges.length, 5);
  assert.equal(calls.length, before + 1, 'a hit: one request');
  const hit = calls.at(-1);
  assert.equal(hit.method, 'GET');
  assert.ok(!new URL(hit.url).searchParams.has('query'), 'the hit sends the hash alone');
  assert.equal(hit.status, 200);
});

test('a batch of three operations is one request', async () => {
  const { calls, fetch } = recordingFetch();
  const link = new BatchHttpLink({ uri: `${routerUrl}/graphql`, fetch, batchMax: 10, batchInterval: 20 });
  const apollo = client(link);
  const [a, b, c] = await Promise.all([
    apollo.query({ query: gql`query A { beer(sku: "123457") { name } }`, fetchPolicy: 'no-cache' }),
    apollo.query({ query: gql`query B { beers(first: 2) { totalCount } }`, fetchPolicy: 'no-cache' }),
    apollo.query({ query: gql`query C($u: String!) { usernameExists(username: $u) }`, variables: { u: 'customer' }, fetchPolicy: 'no-cache' }),
  ]);
  assert.equal(calls.length, 1, 'one HTTP request for the three');
  assert.equal(JSON.parse(calls[0].body).length, 3);
  assert.equal(a.data.beer.name, 'Загорка');
  assert.equal(b.data.beers.totalCount, 43);
  assert.equal(c.data.usernameExists, true);
});

test('a large answer comes brotli-compressed and the client reads it', async () => {
  const { calls, fetch } = recordingFetch();
  const link = new HttpLink({ uri: `${routerUrl}/graphql`, fetch, headers: { 'accept-encoding': 'br' } });
  const result = await client(link).query({ query: CATALOG, variables: { first: 43 }, fetchPolicy: 'no-cache' });
  assert.equal(result.data.beers.edges.length, 43);
  assert.equal(calls[0].encoding, 'br');
});

test('a safelisted router runs the listed operations only', async () => {
  assert.ok(safelistUrl && manifestPath, 'TAPROOM_SAFELIST_ROUTER_URL and TAPROOM_MANIFEST');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const ids = new Map(manifest.operations.map((op) => [op.name, op.id]));
  // Ids from the manifest by operation name, as @apollo/persisted-query-lists does.
  const generateHash = (document) => {
    const name = document.definitions.find((d) => d.kind === 'OperationDefinition')?.name?.value;
    const id = ids.get(name);
    if (!id) throw new Error(`operation ${name} is not in the manifest`);
    return id;
  };
  const { calls, fetch } = recordingFetch();
  const listed = createPersistedQueryLink({ generateHash, useGETForHashedQueries: true })
    .concat(new HttpLink({ uri: `${safelistUrl}/graphql`, fetch }));
  const catalog = manifest.operations.find((op) => op.name === 'Catalog');
  const result = await client(listed).query({ query: gql(catalog.body), variables: { first: 2 }, fetchPolicy: 'no-cache' });
  assert.equal(result.data.beers.edges.length, 2);
  assert.equal(calls.length, 1, 'found by its id at once');
  assert.equal(calls[0].method, 'GET');

  // The same text sent in full is listed too. (Through the link alone: the cache would add
  // __typename to the selections, making it another text.)
  const plain = new HttpLink({ uri: `${safelistUrl}/graphql` });
  const again = await toPromise(execute(plain, { query: gql(catalog.body), variables: { first: 1 } }));
  assert.equal(again.data.beers.edges.length, 1, JSON.stringify(again));

  // Anything else is refused.
  await assert.rejects(
    client(plain).query({ query: gql`query Unlisted { beers { totalCount } }`, fetchPolicy: 'no-cache' }),
    (error) => {
      const errors = error.graphQLErrors?.length ? error.graphQLErrors : error.networkError?.result?.errors ?? [];
      assert.equal(errors[0]?.extensions?.code, 'QUERY_NOT_IN_SAFELIST', JSON.stringify(error));
      return true;
    },
  );
});

test('a deferred query comes in parts: the initial payload, then the deferred fragment', async () => {
  const link = new HttpLink({ uri: `${routerUrl}/graphql` });
  const query = gql`
    query Deferred {
      beers(first: 2) { edges { node { sku ... @defer(label: "details") { name price } } } }
    }
  `;
  // The link gives each part as it comes: the initial payload, then the incremental one.
  const parts = await new Promise((resolve, reject) => {
    const seen = [];
    execute(link, { query }).subscribe({
      next: (result) => seen.push(result),
      error: reject,
      complete: () => resolve(seen),
    });
  });
  assert.equal(parts.length, 2, JSON.stringify(parts));
  const [initial, deferred] = parts;
  assert.equal(initial.hasNext, true);
  assert.deepEqual(initial.data.beers.edges.map((e) => Object.keys(e.node)), [['sku'], ['sku']]);
  assert.equal(deferred.hasNext, false);
  assert.equal(deferred.incremental.length, 2, JSON.stringify(deferred));
  for (const [i, entry] of deferred.incremental.entries()) {
    assert.deepEqual(entry.path, ['beers', 'edges', i, 'node']);
    assert.equal(entry.label, 'details');
    assert.equal(typeof entry.data.name, 'string');
  }

  // ApolloClient merges the parts into one result.
  const apollo = client(new HttpLink({ uri: `${routerUrl}/graphql` }));
  const results = [];
  await new Promise((resolve, reject) => {
    apollo.watchQuery({ query, fetchPolicy: 'no-cache' }).subscribe({
      next: (result) => {
        results.push(result);
        if (result.data?.beers?.edges?.every((e) => e.node.name)) resolve();
      },
      error: reject,
    });
  });
  const merged = results.at(-1).data.beers.edges;
  assert.equal(merged.length, 2);
  assert.ok(merged.every((e) => e.node.sku && e.node.name && e.node.price), JSON.stringify(merged));
});
