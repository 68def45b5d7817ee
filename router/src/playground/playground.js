// Taproom's playground: GraphiQL against this router's /graphql, plus a "Query plan" panel that shows
// the plan the router used for the last operation (the router adds it to the response's extensions
// when a request carries the header x-taproom-query-plan). Subscriptions run over Server-Sent
// Events (Accept: text/event-stream): each event shows in the result pane as it comes.
(function () {
  const h = React.createElement;
  const endpoint = new URL('/graphql', window.location.href).toString();

  let currentPlan = 'Run an operation to see how the router splits it across the subgraphs.';
  const listeners = new Set();
  function publishPlan(plan) {
    currentPlan = plan;
    listeners.forEach((listener) => listener(plan));
  }

  function PlanPanel() {
    const [plan, setPlan] = React.useState(currentPlan);
    React.useEffect(() => {
      listeners.add(setPlan);
      return () => listeners.delete(setPlan);
    }, []);
    return h('div', { className: 'taproom-plan' },
      h('h3', null, 'Query plan'),
      h('pre', { 'data-testid': 'query-plan' }, plan));
  }

  // Whether the operation GraphiQL runs is a subscription: the one named, or else the document's
  // first (comments left out).
  function isSubscription(params) {
    const text = (params.query || '').replace(/#[^\n]*/g, '');
    const operations = [...text.matchAll(/(^|[}\s])(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/g)];
    const chosen = params.operationName
      ? operations.find((m) => m[3] === params.operationName)
      : operations[0];
    return Boolean(chosen) && chosen[2] === 'subscription';
  }

  // A subscription's results, read from the router's event stream as they come.
  async function* subscribe(params, extraHeaders) {
    const headers = Object.assign(
      { 'content-type': 'application/json', accept: 'text/event-stream' },
      extraHeaders || {},
    );
    const response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(params) });
    if (!(response.headers.get('content-type') || '').startsWith('text/event-stream')) {
      yield await response.json();
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: *(.*)$/m.exec(block);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        if (event && event[1] === 'complete') return;
        if (event && event[1] === 'next' && data) yield JSON.parse(data);
      }
    }
  }

  async function fetcher(params, options) {
    if (isSubscription(params)) {
      return subscribe(params, options && options.headers);
    }
    const headers = Object.assign(
      {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        'x-taproom-query-plan': 'true',
      },
      (options && options.headers) || {},
    );
    const response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(params) });
    const body = await response.json();
    if (body.extensions && 'queryPlan' in body.extensions) {
      if (params.operationName !== 'IntrospectionQuery') {
        publishPlan(body.extensions.queryPlan);
      }
      // The plan has its own panel; keep the result pane to what the client asked for.
      delete body.extensions.queryPlan;
      if (Object.keys(body.extensions).length === 0) {
        delete body.extensions;
      }
    }
    return body;
  }

  const planPlugin = {
    title: 'Query plan',
    icon: function PlanIcon() {
      return h('svg', { viewBox: '0 0 24 24', width: '1em', height: '1em', 'aria-hidden': 'true' },
        h('path', { d: 'M4 5h7v4H4zM13 15h7v4h-7zM7.5 9v3.5h9V15', fill: 'none', stroke: 'currentColor', strokeWidth: 1.5 }));
    },
    content: PlanPanel,
  };

  // The router marks the page when it fronts the local stack with its demo accounts.
  const signIn = document.body.dataset.demoAccounts === 'true'
    ? `# Sign in as the demo customer (or admin / Admin1234):
#   mutation { login(username: "customer", password: "Customer1234") { token } }`
    : `# Sign in with your account:
#   mutation { login(username: "you", password: "...") { token } }`;
  const defaultQuery = `# Welcome to Taproom.
#
${signIn}
# then put {"Authorization": "Bearer <token>"} in the Headers pane below,
# browse with the query here, and order with:
#   mutation { addToOrder(sku: "123456", quantity: 2) { total items { beer { name } quantity } } }
# change a line of the cart (0 removes it):
#   mutation { setOrderItemQuantity(sku: "123456", quantity: 5) { status total items { sku quantity } } }
# and see your orders, newest first, a page at a time:
#   { me { ordersConnection(first: 5) { edges { node { status total timeClosed } } } } }
# watch your orders change as you order (the results come in as they happen):
#   subscription { orderChanged { status owner { username } items { sku quantity beer { name } } } }
# The "Query plan" panel (left toolbar) shows how each operation crosses the subgraphs.

query Catalog {
  beers(first: 5) {
    edges { node { sku name price abv available } }
    totalCount
  }
}
`;

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    h(GraphiQL, {
      fetcher,
      plugins: [planPlugin],
      defaultQuery,
      shouldPersistHeaders: true,
    }),
  );
})();
