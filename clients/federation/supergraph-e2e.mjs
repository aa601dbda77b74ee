// The end-to-end run of tests/api/supergraph.rs: composes blocks-gateway's subgraph.graphql
// with the loyalty subgraph, starts the loyalty subgraph and Hive Gateway (the
// `hive-gateway` CLI with gateway.config.mjs) on loopback ports, sends the given requests
// to Hive Gateway, stops everything and prints one JSON object with what happened.
//
// stdin: { blocksUrl, loyalty: { tiers, accountManagers, topCustomers },
//          requests: [{ query, variables, headers }] }
// stdout: { errors, hints, responses: [{ status, body }], loyaltyRequests: [{ headers }],
//           millis: { compose, gatewayStart } }
// Everything runs on 127.0.0.1; nothing is fetched from elsewhere.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compose } from './compose.mjs';
import { startLoyalty } from './loyalty.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const GATEWAY_START_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

async function readStdin() {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
}

/** A loopback port free right now (Hive Gateway takes a port number, not a listener). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts `hive-gateway supergraph FILE` and waits until it is ready (bounded). */
async function startHiveGateway(supergraphFile) {
  const port = await freePort();
  const bin = join(here, 'node_modules', '.bin', 'hive-gateway');
  const args = ['supergraph', supergraphFile, '--host', '127.0.0.1', '--port', String(port)];
  const child = spawn(bin, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (chunk) => (log += chunk));
  child.stderr.on('data', (chunk) => (log += chunk));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + GATEWAY_START_TIMEOUT_MS;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const response = await fetch(`${url}/readiness`, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) {
        return { url: `${url}/graphql`, log: () => log, stop: () => stop(child, exited) };
      }
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop(child, exited);
  throw new Error(`Hive Gateway did not become ready:\n${log}`);
}

async function stop(child, exited) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  const timeout = sleep(5_000).then(() => 'timeout');
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

async function send(url, { query, variables, headers }) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

async function main() {
  const input = await readStdin();
  const loyalty = await startLoyalty(input.loyalty);
  const workDir = mkdtempSync(join(tmpdir(), 'supergraph-e2e-'));
  let gateway;
  try {
    const composeStart = Date.now();
    const { supergraphSdl, errors, hints } = compose([
      { name: 'blocks', url: input.blocksUrl, sdl: readFileSync(join(here, '..', '..', 'subgraph.graphql'), 'utf8') },
      { name: 'loyalty', url: loyalty.url, sdl: readFileSync(join(here, 'loyalty.graphql'), 'utf8') },
    ]);
    const millis = { compose: Date.now() - composeStart };
    if (supergraphSdl === undefined) {
      return { errors, hints, responses: [], loyaltyRequests: [], millis };
    }
    const supergraphFile = join(workDir, 'supergraph.graphql');
    writeFileSync(supergraphFile, supergraphSdl);
    const gatewayStart = Date.now();
    gateway = await startHiveGateway(supergraphFile);
    millis.gatewayStart = Date.now() - gatewayStart;
    const responses = [];
    for (const request of input.requests) {
      // Requests run one after another: the test reads which ones reached the loyalty
      // subgraph in order.
      responses.push(await send(gateway.url, request));
    }
    return {
      errors,
      hints,
      responses,
      loyaltyRequests: loyalty.requests,
      millis,
      gatewayLog: gateway.log(),
    };
  } finally {
    await gateway?.stop();
    await loyalty.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().then(
  (result) => process.stdout.write(JSON.stringify(result)),
  (error) => {
    console.error(error);
    process.exitCode = 1;
  },
);
