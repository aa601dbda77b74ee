// The loyalty subgraph of the end-to-end test: loyalty.graphql served over node's http with
// graphql-js alone, with the federation fields a router needs (`_service`, `_entities`).
// Its data comes from the test; it records the headers of every request it gets.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { buildASTSchema, graphql, parse } from 'graphql';

const sdl = readFileSync(new URL('./loyalty.graphql', import.meta.url), 'utf8');

/** The federation additions a subgraph serves (not part of its SDL). */
const FEDERATION_FIELDS = `
  scalar _Any
  union _Entity = Person | Organization
  type _Service { sdl: String }
  extend type Query {
    _entities(representations: [_Any!]!): [_Entity]!
    _service: _Service!
  }
  directive @link(url: String!, import: [String!]) repeatable on SCHEMA
  directive @key(fields: String!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE
`;

const schema = buildASTSchema(parse(sdl + FEDERATION_FIELDS));

/**
 * Starts the subgraph on a loopback port. `data`: `tiers` (person id to tier),
 * `accountManagers` (organization id to name), `topCustomers` (person ids, in order).
 * Returns its URL, the headers of the requests it received, and `close()`.
 */
export async function startLoyalty(data) {
  const requests = [];
  const entity = (representation) => {
    const { __typename, id } = representation;
    if (__typename === 'Person') return { __typename, id, loyaltyTier: data.tiers[id] ?? null };
    if (__typename === 'Organization') {
      return { __typename, id, accountManager: data.accountManagers[id] ?? null };
    }
    return null;
  };
  const rootValue = {
    topCustomers: () => data.topCustomers.map((id) => entity({ __typename: 'Person', id })),
    _entities: ({ representations }) => representations.map(entity),
    _service: () => ({ sdl }),
  };
  const server = createServer(async (request, response) => {
    requests.push({ headers: request.headers });
    let body = '';
    for await (const chunk of request) body += chunk;
    let params;
    try {
      params = JSON.parse(body);
    } catch {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ errors: [{ message: 'the body is not JSON' }] }));
      return;
    }
    const result = await graphql({
      schema,
      source: params.query,
      rootValue,
      variableValues: params.variables,
      operationName: params.operationName,
      typeResolver: (value) => value.__typename,
    });
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(result));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
