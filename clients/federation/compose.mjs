// Composes a federation supergraph from subgraph SDL files with
// @theguild/federation-composition, and asks Apollo's composition for its hints (the Guild
// library reports errors only).
//
//   node compose.mjs [--strict] NAME URL SDL_FILE [NAME URL SDL_FILE ...] > supergraph.graphql
//
// NAME is the subgraph's name in the supergraph (routers use it in their per-subgraph
// settings: blocks-gateway is `blocks` in gateway.config.mjs), URL where the router reaches
// it, SDL_FILE its subgraph SDL (blocks-gateway's is subgraph.graphql, printed by
// `blocks-gateway schema --federation`). Errors fail the composition; hints are printed,
// and fail it too with --strict.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'graphql';
import { composeServices, validateSubgraph } from '@theguild/federation-composition';
import { composeServices as apolloComposeServices } from '@apollo/composition';

/**
 * Composes `subgraphs` ({ name, url, sdl }): the supergraph SDL, or the errors; with the
 * hints of Apollo's composition either way.
 */
export function compose(subgraphs) {
  const services = subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) }));
  const errors = services.flatMap((service) =>
    validateSubgraph(service).map((error) => `${service.name}: ${error.message}`),
  );
  const composed = composeServices(services);
  errors.push(...(composed.errors ?? []).map((error) => error.message));
  const apollo = apolloComposeServices(services);
  const hints = (apollo.hints ?? []).map((hint) => `${hint.definition.code}: ${hint.message}`);
  // Apollo's own errors only repeat or refine the Guild library's; they fail it too.
  errors.push(...(apollo.errors ?? []).map((error) => `apollo: ${error.message}`));
  return { supergraphSdl: errors.length === 0 ? composed.supergraphSdl : undefined, errors, hints };
}

function main(args) {
  const strict = args[0] === '--strict';
  const triples = strict ? args.slice(1) : args;
  if (triples.length === 0 || triples.length % 3 !== 0) {
    console.error('usage: node compose.mjs [--strict] NAME URL SDL_FILE [NAME URL SDL_FILE ...]');
    return 2;
  }
  const subgraphs = [];
  for (let at = 0; at < triples.length; at += 3) {
    const [name, url, file] = triples.slice(at, at + 3);
    subgraphs.push({ name, url, sdl: readFileSync(file, 'utf8') });
  }
  const { supergraphSdl, errors, hints } = compose(subgraphs);
  for (const error of errors) console.error(`error: ${error}`);
  for (const hint of hints) console.error(`hint: ${hint}`);
  if (supergraphSdl === undefined || (strict && hints.length > 0)) return 1;
  process.stdout.write(supergraphSdl);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
