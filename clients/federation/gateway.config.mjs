// Hive Gateway configuration for a supergraph in which blocks-gateway is the subgraph named
// `blocks` (the name given to compose.mjs). `hive-gateway supergraph supergraph.graphql`
// reads it from its working directory; the end-to-end test (tests/api/supergraph.rs) runs
// Hive Gateway with it.

/** The caller's headers blocks-gateway reads: its own API key (`service` mode) and the
 * per-block credentials of `forward` mode. */
const BLOCKS_GATEWAY_HEADERS = [
  'authorization',
  'x-sales-authorization',
  'x-sales-appid',
  'x-search-authorization',
  'x-search-appid',
  'x-assets-authorization',
  'x-assets-appid',
  'x-b2b-authorization',
  'x-crm-authorization',
];

export const gatewayConfig = {
  propagateHeaders: {
    // Only blocks-gateway gets the caller's credentials; other subgraphs never see them.
    fromClientToSubgraphs({ request, subgraphName }) {
      if (subgraphName !== 'blocks') return {};
      return Object.fromEntries(BLOCKS_GATEWAY_HEADERS.map((name) => [name, request.headers.get(name)]));
    },
  },
  // Nothing is fetched from elsewhere: the supergraph is a file, no usage reporting (it is
  // off unless `reporting` is set), no GraphiQL page (it loads from a CDN).
  graphiql: false,
  landingPage: false,
};
