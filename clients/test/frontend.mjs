// @ts-check
// The gateway as frontends use it, against live gateways over the sandbox blocks
// (tests/api/frontend_clients.rs starts them and writes the plan this reads):
//
// 1. Apollo Client 4, `InMemoryCache` with the README's type policies, development mode:
//    every example operation (queries, then mutations in the plan's order); every query
//    read back from the cache equals its answer; a query overlapping the profile does not
//    clobber it; the cache follows the writes (an update, a merge, deletes evicted from
//    the payload alone). Any warning or error Apollo prints fails the run.
// 2. urql 6 with its defaults (document cache, GET for queries that fit in a URL, no
//    `Content-Type` on GET) against a gateway with caller keys: every example query.
// 3. Apollo Client sending only the hashes of GraphQL Code Generator's client preset
//    (`generated/client/persisted-documents.json`, keys `sha256:<hex>`) to a gateway that
//    trusts that manifest alone: every example operation.
//
// Every answer on the wire is checked against the generated types (test/shape.mjs): the
// schema's types narrowed to the selection set of the document the server ran.
//
// Usage: node --conditions=development test/frontend.mjs PLAN.json
import { readFileSync, readdirSync } from 'node:fs';
import { isDeepStrictEqual, format } from 'node:util';

import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { loadDevMessages, loadErrorMessages } from '@apollo/client/dev';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { Client, cacheExchange, fetchExchange } from '@urql/core';
import { buildSchema, getOperationAST, parse } from 'graphql';

import { evictDeleted, typePolicies } from '../src/apollo-cache.mjs';
import { shapeProblems } from './shape.mjs';

/**
 * @typedef {object} Plan
 * @property {string} open The sandbox gateway as `cargo run` serves it (open callers).
 * @property {{ endpoint: string, key: string }} keyed A gateway with caller keys.
 * @property {{ endpoint: string, manifest: string }} trusted A gateway running only the manifest.
 * @property {{ name: string, variables: Record<string, any> }[]} operations Every example, in order.
 */

/**
 * @typedef {object} Exchange One request on the wire and its answer.
 * @property {string} phase
 * @property {string} method
 * @property {string | null} contentType
 * @property {string | null} query The document text sent, if any.
 * @property {string | undefined} hash The persisted hash sent, if any.
 * @property {string | undefined} operationName
 * @property {Record<string, unknown>} variables
 * @property {number} status
 * @property {any} body
 */

const root = new URL('../../', import.meta.url);
const plan = /** @type {Plan} */ (JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')));
const schema = buildSchema(readFileSync(new URL('schema.graphql', root), 'utf8'));
const examplesDir = new URL('examples/operations/', root);

/** @type {string[]} */
const failures = [];
/** @param {string} message */
const fail = (message) => failures.push(message);

// ------------------------------------------------------------------ console and wire

/** @type {string[]} */
const printed = [];
for (const level of /** @type {const} */ (['warn', 'error'])) {
  console[level] = (/** @type {unknown[]} */ ...args) => {
    printed.push(`console.${level}: ${format(...args)}`);
  };
}

let phase = 'setup';
/** @type {Exchange[]} */
const exchanges = [];
const realFetch = globalThis.fetch;
/** @type {typeof fetch} */
const recordingFetch = async (input, init) => {
  const response = await realFetch(input, init);
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const method = (init?.method ?? 'GET').toUpperCase();
  const headers = new Headers(init?.headers);
  /** @type {any} */
  let request = {};
  if (method === 'GET') {
    const params = url.searchParams;
    request = {
      query: params.get('query'),
      operationName: params.get('operationName') ?? undefined,
      variables: JSON.parse(params.get('variables') ?? '{}'),
      extensions: JSON.parse(params.get('extensions') ?? '{}'),
    };
  } else if (typeof init?.body === 'string') {
    request = JSON.parse(init.body);
  }
  let body;
  try {
    body = await response.clone().json();
  } catch {
    body = null;
  }
  exchanges.push({
    phase,
    method,
    contentType: headers.get('content-type'),
    query: request.query ?? null,
    hash: request.extensions?.persistedQuery?.sha256Hash,
    operationName: request.operationName ?? undefined,
    variables: request.variables ?? {},
    status: response.status,
    body,
  });
  return response;
};
globalThis.fetch = recordingFetch;

// ------------------------------------------------------------------ the examples

const examples = new Map(
  readdirSync(examplesDir)
    .filter((file) => file.endsWith('.graphql'))
    .map((file) => {
      const document = parse(readFileSync(new URL(file, examplesDir), 'utf8'));
      const operation = getOperationAST(document);
      return [file.replace(/\.graphql$/, ''), { document, kind: operation?.operation ?? 'query' }];
    }),
);
const planned = new Set(plan.operations.map((operation) => operation.name));
// An example the plan does not name runs with its own sample variables, after the planned
// ones, unless they hold a placeholder (`"<a person id>"`): then the plan must name it.
const unplanned = [...examples.keys()]
  .filter((name) => !planned.has(name))
  .map((name) => {
    const text = readFileSync(new URL(`${name}.variables.json`, examplesDir), 'utf8');
    if (/"<[^"]*>"/.test(text)) {
      fail(`${name}: its sample variables hold a placeholder; give it variables in tests/api/frontend_clients.rs`);
    }
    return { name, variables: /** @type {Record<string, any>} */ (JSON.parse(text)) };
  });
const operations = [...plan.operations, ...unplanned].map((operation) => {
  const example = examples.get(operation.name);
  if (!example) throw new Error(`the plan names ${operation.name}, which is not in examples/operations`);
  return { ...operation, ...example };
});
const queries = operations.filter((operation) => operation.kind === 'query');
const mutations = operations.filter((operation) => operation.kind === 'mutation');
/** @param {string} name */
const variablesOf = (name) => operations.find((operation) => operation.name === name)?.variables ?? {};

/**
 * Every exchange of `phaseName` answered 200 without errors, with data of the generated
 * types of the document the server ran.
 * @param {string} phaseName
 * @param {Map<string, string>} [documentsByHash]
 */
function checkWire(phaseName, documentsByHash) {
  const seen = exchanges.filter((exchange) => exchange.phase === phaseName);
  if (seen.length === 0) fail(`${phaseName}: no request was sent`);
  for (const exchange of seen) {
    const label = `${phaseName} ${exchange.method} ${exchange.operationName ?? '?'}`;
    if (exchange.status !== 200) fail(`${label}: HTTP ${exchange.status} ${JSON.stringify(exchange.body)}`);
    if (!exchange.body || exchange.body.errors) {
      fail(`${label}: ${JSON.stringify(exchange.body?.errors ?? exchange.body)}`);
      continue;
    }
    const text = exchange.query ?? (exchange.hash ? documentsByHash?.get(exchange.hash) : undefined);
    if (!text) {
      fail(`${label}: neither a document nor a known hash was sent`);
      continue;
    }
    const problems = shapeProblems(schema, parse(text), exchange.operationName, exchange.variables, exchange.body.data);
    for (const problem of problems) fail(`${label}: answer does not match the generated types: ${problem}`);
  }
}

/** The answer data of the last exchange of `name` in the current phase. */
function lastAnswer(/** @type {string} */ name) {
  return exchanges.filter((exchange) => exchange.phase === phase && exchange.operationName === name).at(-1)?.body?.data;
}

/**
 * Runs `body`, turning a thrown error into a failure.
 * @param {string} label
 * @param {() => Promise<void>} body
 */
async function step(label, body) {
  try {
    await body();
  } catch (error) {
    fail(`${label}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The shape check must refuse what the generated types would not hold. */
function proveShapeChecksBite() {
  const probe = parse(`query Probe { persons(first: 1) { totalCount edges { node { __typename id lifecycleStage createdAt organization { id } } } } }`);
  const node = { __typename: 'Person', id: 'p-1', lifecycleStage: 'LEAD', createdAt: '2025-01-10T10:30:00.000Z', organization: null };
  /** @param {Record<string, unknown>} changes */
  const answer = (changes) => {
    /** @type {Record<string, unknown>} */
    const changed = { ...node, ...changes };
    for (const [key, value] of Object.entries(changed)) if (value === undefined) delete changed[key];
    return { persons: { totalCount: 1, edges: [{ node: changed }] } };
  };
  const good = shapeProblems(schema, probe, 'Probe', {}, answer({}));
  if (good.length > 0) throw new Error(`the shape check refuses a good answer: ${good.join('; ')}`);
  /** @type {[string, Record<string, unknown>][]} */
  const bad = [
    ['a missing field', { id: undefined }],
    ['a field not selected', { name: 'Ada' }],
    ['null for a non-null field', { lifecycleStage: null }],
    ['an unknown enum value', { lifecycleStage: 'lead' }],
    ['a DateTime with an offset', { createdAt: '2025-01-10T10:30:00+00:00' }],
    ['a DateTime without milliseconds', { createdAt: '2025-01-10T10:30:00Z' }],
    ['a number for an ID', { id: 5 }],
    ['another __typename', { __typename: 'Organization' }],
  ];
  for (const [what, changes] of bad) {
    if (shapeProblems(schema, probe, 'Probe', {}, answer(changes)).length === 0) {
      throw new Error(`the shape check accepts ${what}`);
    }
  }
}

// ------------------------------------------------------------------ Apollo Client

loadDevMessages();
loadErrorMessages();

/** Apollo's development checks must be on, or "no warning" would prove nothing. */
function proveWarningsAreSeen() {
  const cache = new InMemoryCache();
  const wide = parse('query Wide { warningProbe { __typename one two } }');
  const narrow = parse('query Narrow { warningProbe { __typename one } }');
  cache.writeQuery({ query: wide, data: { warningProbe: { __typename: 'Probe', one: 1, two: 2 } } });
  cache.writeQuery({ query: narrow, data: { warningProbe: { __typename: 'Probe', one: 3 } } });
  const seen = printed.splice(0).some((line) => line.includes('Cache data may be lost'));
  if (!seen) throw new Error("Apollo printed no cache warning where it must: run node with --conditions=development");
}

const PERSON_STATE = parse('query PersonState($id: ID!) { person(id: $id) { id active mergedInto { id } } }');
// Another page's view of the profile's identity: other fields of the same objects.
const IDENTITY_BLOCKS = parse(`query IdentityBlocks($id: ID!) {
  identity(id: $id) { id email sales { id email } search { id name } assets { id username assets { id name } } }
}`);

/**
 * Whether the cache holds the object.
 * @param {ApolloClient} apollo
 * @param {string} typename
 * @param {string} id
 */
const cached = (apollo, typename, id) => `${typename}:${id}` in /** @type {object} */ (apollo.cache.extract());

/**
 * The persons of the PersonList page as the cache holds them.
 * @param {ApolloClient} apollo
 */
function personRows(apollo) {
  const personList = examples.get('PersonList');
  if (!personList) throw new Error('no PersonList example');
  const list = apollo.readQuery({ query: personList.document, variables: variablesOf('PersonList') });
  if (!list) throw new Error('PersonList is no longer complete in the cache');
  return /** @type {any} */ (list).persons.edges.map((/** @type {any} */ edge) => edge.node);
}

/**
 * `relayStylePagination`'s read function turns an empty page's null `startCursor` and
 * `endCursor` into `""` (Apollo's own choice, not lost data): read back as null.
 * @param {unknown} value
 * @returns {unknown}
 */
function withNullCursors(value) {
  if (Array.isArray(value)) return value.map(withNullCursors);
  if (typeof value !== 'object' || value === null) return value;
  const copy = Object.fromEntries(Object.entries(value).map(([key, child]) => [key, withNullCursors(child)]));
  if (copy.__typename === 'PageInfo') {
    for (const key of ['startCursor', 'endCursor']) if (copy[key] === '') copy[key] = null;
  }
  return copy;
}

async function apolloAgainstTheSandbox() {
  phase = 'apollo';
  const apollo = new ApolloClient({ link: new HttpLink({ uri: plan.open }), cache: new InMemoryCache({ typePolicies }) });
  for (const { name, document, variables } of queries) {
    await step(`apollo ${name}`, async () => {
      await apollo.query({ query: document, variables, fetchPolicy: 'network-only' });
    });
  }
  const profile = variablesOf('IdentityProfile');
  await step('apollo IdentityBlocks', async () => {
    await apollo.query({ query: IDENTITY_BLOCKS, variables: { id: profile.id }, fetchPolicy: 'network-only' });
  });
  // Read back from the cache alone: exactly what the network answered.
  for (const { name, document, variables } of queries) {
    const fromCache = withNullCursors(apollo.readQuery({ query: document, variables }));
    if (!isDeepStrictEqual(fromCache, lastAnswer(name))) {
      fail(`apollo ${name}: the cache answers ${JSON.stringify(fromCache)}, the network answered ${JSON.stringify(lastAnswer(name))}`);
    }
  }

  const merge = variablesOf('MergePersons').input;
  for (const id of merge?.duplicateIds ?? []) {
    await step('apollo PersonState', async () => {
      await apollo.query({ query: PERSON_STATE, variables: { id }, fetchPolicy: 'network-only' });
    });
  }
  const updated = variablesOf('UpdatePerson').input;
  const deletedPerson = variablesOf('DeletePerson').id;
  const deletedOrganization = variablesOf('DeleteOrganization').id;
  for (const [typename, id] of [['Person', updated?.id], ['Person', deletedPerson], ['Organization', deletedOrganization]]) {
    if (!cached(apollo, typename, id)) fail(`apollo: ${typename}:${id} is not in the cache before the writes (plan: pick it from PersonList)`);
  }

  for (const { name, document, variables } of mutations) {
    await step(`apollo ${name}`, async () => {
      const update = name.startsWith('Delete') ? evictDeleted : undefined;
      await apollo.mutate({ mutation: document, variables, update });
    });
  }

  await step('apollo: the cache follows the writes', async () => {
    const row = personRows(apollo).find((/** @type {any} */ person) => person.id === updated.id);
    if (row?.jobTitle !== updated.jobTitle || row?.lifecycleStage !== updated.lifecycleStage) {
      throw new Error(`UpdatePerson's answer did not reach PersonList: ${JSON.stringify(row)}`);
    }
    for (const id of merge.duplicateIds) {
      const state = /** @type {any} */ (apollo.readQuery({ query: PERSON_STATE, variables: { id } }));
      if (state?.person?.active !== false || state?.person?.mergedInto?.id !== merge.primaryId) {
        throw new Error(`MergePersons' answer did not reach the cached duplicate ${id}: ${JSON.stringify(state)}`);
      }
    }
    for (const [typename, id] of [['Person', deletedPerson], ['Organization', deletedOrganization]]) {
      if (cached(apollo, typename, id)) throw new Error(`${typename}:${id} is still cached after its delete`);
    }
    if (personRows(apollo).some((/** @type {any} */ person) => person.id === deletedPerson)) {
      throw new Error('the deleted person is still in PersonList');
    }
  });
  checkWire('apollo');
}

// ------------------------------------------------------------------ urql

async function urqlAgainstAKeyedGateway() {
  phase = 'urql';
  const urql = new Client({
    url: plan.keyed.endpoint,
    exchanges: [cacheExchange, fetchExchange],
    fetchOptions: { headers: { authorization: `Bearer ${plan.keyed.key}` } },
  });
  for (const { name, document, variables } of queries) {
    await step(`urql ${name}`, async () => {
      const result = await urql.query(document, variables).toPromise();
      if (result.error) throw result.error;
    });
  }
  checkWire('urql');
  const gets = exchanges.filter((exchange) => exchange.phase === 'urql' && exchange.method === 'GET');
  if (!gets.some((exchange) => exchange.contentType === null && exchange.status === 200)) {
    fail('urql: no GET without Content-Type was answered (urql sends queries that fit in a URL that way)');
  }
}

// ------------------------------------------------------------------ persisted documents

async function persistedDocumentsOfTheClientPreset() {
  phase = 'persisted';
  const manifest = /** @type {Record<string, string>} */ (JSON.parse(readFileSync(plan.trusted.manifest, 'utf8')));
  const documentsByHash = new Map(Object.entries(manifest));
  /** @type {Map<string | undefined, string>} */
  const hashByName = new Map();
  for (const [hash, text] of documentsByHash) {
    if (!hash.startsWith('sha256:')) fail(`persisted: the client preset's key ${hash} lacks its sha256: prefix`);
    hashByName.set(getOperationAST(parse(text))?.name?.value, hash);
  }
  const persisted = new PersistedQueryLink({
    // As the client preset's documents carry it in `document.__meta__.hash`.
    generateHash: (document) => hashByName.get(getOperationAST(document)?.name?.value) ?? 'unknown',
    // Trusted documents: never fall back to sending the text.
    retry: () => false,
  });
  const apollo = new ApolloClient({
    link: persisted.concat(new HttpLink({ uri: plan.trusted.endpoint })),
    cache: new InMemoryCache({ typePolicies }),
  });
  for (const { name, kind, document, variables } of operations) {
    await step(`persisted ${name}`, async () => {
      if (kind === 'query') await apollo.query({ query: document, variables, fetchPolicy: 'network-only' });
      else await apollo.mutate({ mutation: document, variables, update: name.startsWith('Delete') ? evictDeleted : undefined });
    });
  }
  for (const exchange of exchanges.filter((candidate) => candidate.phase === 'persisted')) {
    if (exchange.query !== null || !exchange.hash?.startsWith('sha256:')) {
      fail(`persisted ${exchange.operationName}: sent ${exchange.query ? 'the document' : `hash ${exchange.hash}`}, not the preset's hash alone`);
    }
  }
  checkWire('persisted', documentsByHash);
}

// ------------------------------------------------------------------ run

await step('setup', async () => proveShapeChecksBite());
await step('setup', async () => proveWarningsAreSeen());
await apolloAgainstTheSandbox();
await urqlAgainstAKeyedGateway();
await persistedDocumentsOfTheClientPreset();
for (const line of printed) fail(`printed by a client: ${line}`);

const count = (/** @type {string} */ name, /** @type {(e: Exchange) => boolean} */ keep = () => true) =>
  exchanges.filter((exchange) => exchange.phase === name && keep(exchange)).length;
process.stdout.write(
  `${JSON.stringify({
    examples: examples.size,
    apolloRequests: count('apollo'),
    urqlGets: count('urql', (exchange) => exchange.method === 'GET'),
    urqlPosts: count('urql', (exchange) => exchange.method === 'POST'),
    persistedRequests: count('persisted'),
    failures: failures.length,
  })}\n`,
);
if (failures.length > 0) {
  process.stderr.write(`${failures.join('\n')}\n`);
  process.exit(1);
}
