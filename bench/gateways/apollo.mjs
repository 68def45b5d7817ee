// Apollo Gateway (with Apollo Server) on a supergraph file, for the benchmark.
// Usage: node apollo.mjs <supergraph.graphql> <port>
// The client's Authorization header is passed on to every subgraph, as Taproom's router does.
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';

const [supergraphPath, port] = process.argv.slice(2);
if (!supergraphPath || !port) {
  console.error('usage: node apollo.mjs <supergraph.graphql> <port>');
  process.exit(2);
}

class ForwardAuthorization extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) {
      request.http.headers.set('authorization', context.authorization);
    }
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(supergraphPath, 'utf8'),
  buildService: ({ url }) => new ForwardAuthorization({ url }),
});
const server = new ApolloServer({ gateway, introspection: false });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(port) },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
console.error(`apollo gateway listening at ${url}`);
