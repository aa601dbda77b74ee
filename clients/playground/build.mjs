// Builds the playground the gateway embeds (`assets/playground/` at the repository root):
// GraphiQL with the explorer plugin and Monaco's workers, from the versions package-lock.json
// pins, each file gzip-compressed. The build is deterministic (no timestamps, no source
// maps, stable file names), so `npm run playground:check` can compare a fresh build with
// the committed files; the gateway serves them under a path carrying a hash of them.
//
//   npm run --prefix clients playground:build   # rewrite assets/playground/
//   npm run --prefix clients playground:check   # fail if the committed files differ
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const clients = path.resolve(here, '..');
const committed = path.resolve(clients, '../assets/playground');

/** The same options for every bundle: minified, for the browsers GraphiQL supports. */
const common = {
  bundle: true,
  minify: true,
  target: ['es2022'],
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
  absWorkingDir: clients,
  define: { 'process.env.NODE_ENV': '"production"' },
};

/** Monaco's language services, one classic worker each (see src/workers.js). */
const WORKERS = {
  'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
  'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
  'graphql.worker': 'monaco-graphql/esm/graphql.worker.js',
};

/**
 * Drops the stylesheets Monaco's modules import: GraphiQL's style.css already carries
 * them (with Monaco's icon font inline), and twice would cost 70 kB and a font file.
 */
const monacoStylesFromGraphiQL = {
  name: 'monaco-styles-from-graphiql',
  setup(build) {
    build.onResolve({ filter: /\.css$/ }, ({ path: imported, importer }) =>
      importer.includes('/node_modules/monaco-editor/') ? { path: imported, namespace: 'monaco-css' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'monaco-css' }, () => ({ contents: '', loader: 'empty' }));
  },
};

async function build(outdir) {
  const page = await esbuild.build({
    ...common,
    entryPoints: { playground: path.join(here, 'src/main.jsx') },
    format: 'esm',
    jsx: 'automatic',
    plugins: [monacoStylesFromGraphiQL],
    outdir,
    metafile: true,
  });
  const workers = await esbuild.build({
    ...common,
    entryPoints: WORKERS,
    format: 'iife',
    outdir,
    metafile: true,
  });
  await writeLicenses(outdir, [page.metafile, workers.metafile]);
}

/**
 * THIRD_PARTY_LICENSES.txt: every npm package whose code went into the bundles, with its
 * version and license text (the bundles themselves carry no comments).
 */
async function writeLicenses(outdir, metafiles) {
  const packages = new Map();
  for (const metafile of metafiles) {
    for (const input of Object.keys(metafile.inputs)) {
      const match = input.match(/^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//);
      if (match) packages.set(match[1], match[2]);
    }
  }
  const sections = [];
  for (const [dir, name] of [...packages].sort(([, a], [, b]) => a.localeCompare(b))) {
    const manifest = JSON.parse(await readFile(path.join(clients, dir, 'package.json'), 'utf8'));
    const files = await readdir(path.join(clients, dir));
    const licenseFile = files.sort().find((file) => /^(licen[cs]e|copying)(\.|$)/i.test(file));
    const text = licenseFile
      ? (await readFile(path.join(clients, dir, licenseFile), 'utf8')).trim()
      : `(no license file; package.json says ${manifest.license})`;
    sections.push(`${name}@${manifest.version} (${manifest.license})\n\n${text}\n`);
  }
  const unique = [...new Set(sections)];
  await writeFile(
    path.join(outdir, 'THIRD_PARTY_LICENSES.txt'),
    `The playground bundles these packages.\n\n${unique.join('\n' + '-'.repeat(72) + '\n\n')}`,
  );
}

/** The files of a directory, by name, sorted. */
async function filesOf(dir) {
  const names = (await readdir(dir).catch(() => [])).sort();
  return new Map(await Promise.all(names.map(async (name) => [name, await readFile(path.join(dir, name))])));
}

/**
 * The committed files: each built file gzip-compressed (`<name>.gz`), which the gateway
 * embeds and serves as they are. Compares contents, not compressed bytes: zlib builds may
 * compress the same input differently, and a file whose content did not change is kept.
 */
function compare(built, committedFiles) {
  const problems = [];
  const unchanged = new Set();
  for (const [name, bytes] of built) {
    const old = committedFiles.get(`${name}.gz`);
    if (!old) problems.push(`${name}.gz is missing`);
    else if (!gunzipSync(old).equals(bytes)) problems.push(`${name}.gz differs`);
    else unchanged.add(`${name}.gz`);
  }
  const stale = [...committedFiles.keys()].filter((name) => !built.has(name.replace(/\.gz$/, '')));
  for (const name of stale) problems.push(`${name} is not built any more`);
  return { problems, unchanged, stale };
}

const fresh = await mkdtemp(path.join(tmpdir(), 'playground-'));
try {
  await build(fresh);
  const built = await filesOf(fresh);
  const { problems, unchanged, stale } = compare(built, await filesOf(committed));
  if (process.argv.includes('--check')) {
    if (problems.length > 0) {
      console.error(`assets/playground/ is not what the build produces: ${problems.join(', ')}.`);
      console.error('Run `npm ci --prefix clients && npm run --prefix clients playground:build` and commit it.');
      process.exit(1);
    }
    console.log(`assets/playground/: ${built.size} files, as the build produces them`);
  } else {
    await mkdir(committed, { recursive: true });
    for (const name of stale) await rm(path.join(committed, name));
    for (const [name, bytes] of built) {
      const gz = `${name}.gz`;
      if (!unchanged.has(gz)) await writeFile(path.join(committed, gz), gzipSync(bytes, { level: 9 }));
      const size = (await readFile(path.join(committed, gz))).length;
      console.log(`${name}\t${bytes.length} bytes\t${gz}\t${size} bytes${unchanged.has(gz) ? ' (unchanged)' : ''}`);
    }
  }
} finally {
  await rm(fresh, { recursive: true, force: true });
}
