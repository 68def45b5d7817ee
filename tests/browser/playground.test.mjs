// The playground in a real browser: headless Chromium opens the router's page, a query is typed into
// the editor and run, and the result pane and the query-plan panel show the federated answer.
// Needs a running stack: TAPROOM_ROUTER_URL (scripts/browser-test.sh starts one). Saves a screenshot
// to TAPROOM_SCREENSHOT (default target/playground.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

const routerUrl = process.env.TAPROOM_ROUTER_URL;
const screenshot = process.env.TAPROOM_SCREENSHOT ?? 'target/playground.png';

test('the playground runs a federated query and shows its plan', { timeout: 120_000 }, async () => {
  assert.ok(routerUrl, 'TAPROOM_ROUTER_URL must name a running router');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    // Playwright gives each launch a fresh empty profile; these keep Chromium off the network.
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const failed = [];
    page.on('requestfailed', (request) => failed.push(request.url()));
    page.on('pageerror', (error) => failed.push(`page error: ${error.message}`));
    await page.goto(routerUrl, { waitUntil: 'networkidle' });
    await page.waitForSelector('.graphiql-query-editor .CodeMirror');
    // The docs explorer fills in once introspection through the router has answered.
    await page.click('button[aria-label="Show Documentation Explorer"]');
    await page.getByText('Root Types').waitFor({ timeout: 30_000 });
    await page.getByText('BeerConnection').first().waitFor();

    const editor = page.locator('.graphiql-query-editor .CodeMirror');
    // The local stack has demo accounts, and the welcome text names them.
    assert.match(await editor.innerText(), /Sign in as the demo customer/);
    // It shows a cart edit.
    assert.match(await editor.innerText(), /setOrderItemQuantity\(sku: "123456", quantity: 5\)/);
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('{ beer(sku: "123457") { name price', { delay: 10 });
    await page.keyboard.press('Escape'); // close the completion hint, if shown
    // GraphiQL re-reads the document (and its operation name) shortly after typing stops.
    await page.waitForTimeout(1000);
    await page.click('.graphiql-execute-button');
    await page.locator('.graphiql-response').getByText('Загорка').waitFor({ timeout: 30_000 });
    const result = await page.locator('.graphiql-response').innerText();
    assert.match(result, /"name": "Загорка"/);
    assert.match(result, /"price": "2.00"/);

    await page.click('button[aria-label="Show Query plan"]');
    const plan = await page.locator('[data-testid="query-plan"]').innerText();
    assert.match(plan, /Fetch\(service: "beers"\)/);

    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.deepEqual(failed, [], 'every asset loads from the router itself, with no page errors');
  } finally {
    await browser.close();
  }
});

test('the playground runs a subscription and shows each event as it comes', { timeout: 120_000 }, async () => {
  assert.ok(routerUrl, 'TAPROOM_ROUTER_URL must name a running router');
  const graphql = async (query, token) => {
    const response = await fetch(new URL('/graphql', routerUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query }),
    });
    return response.json();
  };
  const login = await graphql('mutation { login(username: "customer", password: "Customer1234") { token } }');
  const token = login.data.login.token;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const failed = [];
    page.on('pageerror', (error) => failed.push(`page error: ${error.message}`));
    // The headers pane's content, as GraphiQL keeps it (shouldPersistHeaders).
    await page.addInitScript((headers) => {
      localStorage.setItem('graphiql:headers', headers);
    }, JSON.stringify({ Authorization: `Bearer ${token}` }));
    await page.goto(routerUrl, { waitUntil: 'networkidle' });
    await page.waitForSelector('.graphiql-query-editor .CodeMirror');
    const editor = page.locator('.graphiql-query-editor .CodeMirror');
    assert.match(await editor.innerText(), /subscription \{ orderChanged/);
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('subscription Live { orderChanged { owner { username } items { sku beer { name', { delay: 10 });
    await page.keyboard.press('Escape');
    await page.waitForTimeout(1000);
    await page.click('.graphiql-execute-button');
    // The subscription is live once the subgraph has verified the caller: lines are added until
    // an event shows.
    const response = page.locator('.graphiql-response');
    for (let tries = 0; tries < 30; tries++) {
      const added = await graphql('mutation { addToOrder(sku: "123457", quantity: 1) { id } }', token);
      assert.equal(added.errors, undefined, JSON.stringify(added));
      if (/"username": "customer"/.test(await response.innerText())) break;
      await page.waitForTimeout(500);
    }
    const result = await response.innerText();
    assert.match(result, /"orderChanged"/);
    assert.match(result, /"username": "customer"/, 'the owner comes from the users subgraph');
    assert.match(result, /"name": "Загорка"/, 'the beer comes from the beers subgraph');
    assert.deepEqual(failed, []);
  } finally {
    await browser.close();
  }
});
