// Monaco runs its language services in web workers. They are built beside this bundle
// (see build.mjs) and loaded from the gateway's own origin, so the page needs no CDN and
// its Content-Security-Policy can say `worker-src 'self'`.
const WORKERS = {
  json: 'json.worker.js',
  graphql: 'graphql.worker.js',
};

globalThis.MonacoEnvironment = {
  getWorker(_workerId, label) {
    const file = WORKERS[label] ?? 'editor.worker.js';
    return new Worker(new URL(file, import.meta.url), { name: label });
  },
};
