// Runs the graphql-http server audits (GraphQL over HTTP conformance) against a live
// endpoint and prints one JSON array of results on stdout: { id, name, status, reason? }.
// Usage: node audit.mjs http://127.0.0.1:4000/graphql
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint URL>');
  process.exit(2);
}

const results = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  results.push({
    id: result.id,
    name: result.name,
    status: result.status,
    ...(result.reason ? { reason: result.reason } : {}),
  });
}
process.stdout.write(JSON.stringify(results));
