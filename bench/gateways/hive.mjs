// Hive Gateway on a supergraph file, for the benchmark, in one process (no forked workers).
// Usage: node hive.mjs <supergraph.graphql> <port>
// In-flight request deduplication is off both ways (client requests and subgraph requests), so every
// request the benchmark sends is executed; the client's Authorization header goes to every subgraph.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createGatewayRuntime } from '@graphql-hive/gateway';

const [supergraphPath, port] = process.argv.slice(2);
if (!supergraphPath || !port) {
  console.error('usage: node hive.mjs <supergraph.graphql> <port>');
  process.exit(2);
}

const gateway = createGatewayRuntime({
  supergraph: readFileSync(supergraphPath, 'utf8'),
  inboundInflightRequestDeduplication: false,
  transportEntries: { '*': { options: { deduplicateInflightRequests: false } } },
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => ({
      authorization: request.headers.get('authorization'),
    }),
  },
  graphiql: false,
  landingPage: false,
  logging: 'warn',
});
const server = createServer(gateway);
server.listen(Number(port), '127.0.0.1', () => {
  console.error(`hive gateway listening at http://127.0.0.1:${port}/graphql`);
});
