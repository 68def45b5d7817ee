// Subscriptions through the router with the clients frontends use: graphql-ws (WebSocket,
// graphql-transport-ws), graphql-sse (Server-Sent Events, distinct connections mode) and
// @apollo/client's HttpLink (multipart HTTP). Each receives `orderChanged` with the owner (users
// subgraph) and every line's beer (beers subgraph) resolved, while another client adds lines.
// Needs a running stack: TAPROOM_ROUTER_URL (scripts/apollo-test.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import { HttpLink, execute, gql } from '@apollo/client/core/index.js';

const routerUrl = process.env.TAPROOM_ROUTER_URL;
const graphqlUrl = `${routerUrl}/graphql`;

const ORDER_CHANGED =
  'subscription { orderChanged { id owner { username } items { sku quantity beer { name } } } }';

async function gqlRequest(query, variables, token) {
  const response = await fetch(graphqlUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data;
}

// A new customer: their username and token.
async function customer() {
  const username = `sub_${randomBytes(6).toString('hex')}`;
  const data = await gqlRequest(
    'mutation($input: RegisterInput!) { register(input: $input) { token } }',
    { input: { username, email: `${username}@example.com`, password: 'Secret123' } },
  );
  return { username, token: data.register.token };
}

const addLine = (token) =>
  gqlRequest('mutation { addToOrder(sku: "123456", quantity: 1) { id } }', {}, token);

// Adds a line every 300 ms until `events` holds one (the subscription is live only once the
// subgraph has verified the caller), at most for 10 s; returns the first event.
async function firstEvent(events, token) {
  for (let tries = 0; tries < 33; tries++) {
    if (events.length > 0) return events[0];
    await addLine(token);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.fail('no orderChanged event within 10 s');
}

function checkEvent(result, username) {
  assert.equal(result.errors, undefined, JSON.stringify(result));
  const order = result.data.orderChanged;
  assert.equal(order.owner.username, username, 'owner resolved by the users subgraph');
  assert.ok(order.items.length > 0);
  for (const item of order.items) {
    assert.equal(typeof item.beer.name, 'string', 'beer resolved by the beers subgraph');
  }
}

test('graphql-ws receives orderChanged with owner and beers resolved', async () => {
  const { username, token } = await customer();
  const client = createWsClient({
    url: graphqlUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
  });
  const events = [];
  let failure;
  const unsubscribe = client.subscribe(
    { query: ORDER_CHANGED },
    { next: (result) => events.push(result), error: (e) => { failure = e; }, complete: () => {} },
  );
  try {
    checkEvent(await firstEvent(events, token), username);
    assert.equal(failure, undefined);
  } finally {
    unsubscribe();
    await client.dispose();
  }
});

test('graphql-sse receives orderChanged with owner and beers resolved', async () => {
  const { username, token } = await customer();
  const client = createSseClient({
    url: graphqlUrl,
    headers: { authorization: `Bearer ${token}` },
  });
  const events = [];
  let failure;
  const unsubscribe = client.subscribe(
    { query: ORDER_CHANGED },
    { next: (result) => events.push(result), error: (e) => { failure = e; }, complete: () => {} },
  );
  try {
    checkEvent(await firstEvent(events, token), username);
    assert.equal(failure, undefined);
  } finally {
    unsubscribe();
    client.dispose();
  }
});

test('@apollo/client receives orderChanged over multipart HTTP', async () => {
  const { username, token } = await customer();
  const link = new HttpLink({ uri: graphqlUrl, headers: { authorization: `Bearer ${token}` } });
  const events = [];
  let failure;
  const subscription = execute(link, { query: gql(ORDER_CHANGED) }).subscribe({
    next: (result) => events.push(result),
    error: (e) => { failure = e; },
  });
  try {
    checkEvent(await firstEvent(events, token), username);
    assert.equal(failure, undefined);
  } finally {
    subscription.unsubscribe();
  }
});
