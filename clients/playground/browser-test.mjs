// Opens the playground of a running gateway in headless Chromium (Debian's package, driven
// by playwright-core, which downloads no browser) with every request outside the page's
// origin blocked, and checks what a person would see: the editor with the first example,
// the query run with data in the result pane, the schema docs loaded by introspection, no
// Content-Security-Policy violation, no request to another origin. With a second gateway
// whose callers need a key, it checks that playground opens its headers pane on the key's
// placeholder. Prints a JSON report; exits 1 (saying why) when a check fails.
//
//   node playground/browser-test.mjs <playground URL> <screenshot.png> [<keyed playground URL>]
//
// CHROMIUM names the browser (default /usr/bin/chromium).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [url, screenshotPath, keyedUrl] = process.argv.slice(2);
if (!url || !screenshotPath) {
  console.error('usage: node browser-test.mjs <playground URL> <screenshot.png> [<keyed playground URL>]');
  process.exit(2);
}
const origin = new URL(url).origin;
/** The gateways under test: the only origins a request may go to. */
const origins = new Set([origin, ...(keyedUrl ? [new URL(keyedUrl).origin] : [])]);
const STEP_TIMEOUT_MS = 20_000;

const report = { origin, requests: [], blocked: [], problems: [], consoleErrors: [] };
/** Requests to another origin, seen by the interception or as they were sent. */
const blocked = new Set();

/** A check that failed: recorded, and the run exits 1 at the end. */
function problem(message) {
  report.problems.push(message);
}

const userDataDir = await mkdtemp(path.join(tmpdir(), 'playground-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1600, height: 900 },
  deviceScaleFactor: 1,
  colorScheme: 'light',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // Belt and braces beside the interception below: anything not on loopback goes to a
    // proxy that is not there (loopback itself bypasses proxies).
    '--proxy-server=http://127.0.0.1:9',
  ],
});

try {
  // Every request the page or its workers make: the gateway's origin passes, anything
  // else is recorded and refused.
  await context.route('**/*', (route) => {
    const requestUrl = route.request().url();
    if (origins.has(new URL(requestUrl).origin)) return route.continue();
    blocked.add(requestUrl);
    return route.abort('blockedbyclient');
  });
  context.on('request', (request) => {
    const requestUrl = new URL(request.url());
    if (requestUrl.protocol === 'data:' || requestUrl.protocol === 'blob:') return;
    report.requests.push(`${request.method()} ${requestUrl.origin === origin ? requestUrl.pathname : request.url()}`);
    if (!origins.has(requestUrl.origin)) blocked.add(request.url());
  });

  // The text of an editor (Monaco renders spaces as no-break spaces), and whether it shows.
  await context.addInitScript(() => {
    window.textOf = (selector) => (document.querySelector(selector)?.textContent ?? '').replaceAll('\u00a0', ' ');
    window.shownTextOf = (selector) =>
      [...document.querySelectorAll(selector)]
        .filter((element) => element.checkVisibility())
        .map((element) => element.textContent.replaceAll('\u00a0', ' '))
        .join('\n');
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on('console', (message) => {
    if (message.type() === 'error') report.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => problem(`uncaught error in the page: ${error.message}`));
  /** The JSON answer to the next POST /graphql of an operation whose name matches. */
  const answerTo = (operationName) => {
    const answer = page
      .waitForResponse((response) => {
        const request = response.request();
        return (
          request.method() === 'POST' &&
          request.url() === `${origin}/graphql` &&
          operationName.test(request.postDataJSON()?.operationName ?? '')
        );
      })
      .then((response) => response.json());
    // Awaited at its step, which reports a failure; an earlier one must not end the process.
    answer.catch(() => {});
    return answer;
  };

  report.step = 'open the page';
  const introspection = answerTo(/introspection/i);
  await page.goto(url, { waitUntil: 'load' });

  report.step = 'the editor renders the first example';
  const query = page.locator('.graphiql-query-editor .monaco-editor .view-lines');
  await query.waitFor();
  await page.waitForFunction(() => textOf('.graphiql-query-editor .view-lines').includes('query PersonList'));

  report.step = 'the schema loads through introspection';
  const schema = await introspection;
  if (!schema?.data?.__schema?.queryType) problem(`no schema through introspection: ${JSON.stringify(schema).slice(0, 300)}`);

  report.step = 'the preloaded query shows data in the result pane';
  const personList = answerTo(/^PersonList$/);
  await page.locator('.graphiql-execute-button').click();
  const result = await personList;
  await page.waitForFunction(() => textOf('.graphiql-response .view-lines').includes('"persons"'));
  report.resultPane = (await page.locator('.graphiql-response .view-lines').textContent()).replace(/\s+/g, ' ').slice(0, 200);
  if (!result?.data?.persons?.edges?.length || result.errors) problem(`PersonList did not answer data: ${JSON.stringify(result)?.slice(0, 300)}`);
  else report.personListTotalCount = result.data.persons.totalCount;

  report.step = "the docs show the schema's root types; then the explorer, for the screenshot";
  await page.getByRole('button', { name: /documentation explorer/i }).click();
  await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().waitFor();
  await page.getByRole('button', { name: /graphiql explorer/i }).click();
  await page.locator('.docExplorerWrap').getByText('persons', { exact: true }).first().waitFor();
  await page.screenshot({ path: screenshotPath });

  if (keyedUrl) {
    report.step = 'with callers that need a key, the headers pane shows where it goes';
    const keyed = await context.newPage();
    keyed.setDefaultTimeout(STEP_TIMEOUT_MS);
    keyed.on('pageerror', (error) => problem(`uncaught error in the keyed page: ${error.message}`));
    await keyed.goto(keyedUrl, { waitUntil: 'load' });
    await keyed.waitForFunction(() => shownTextOf('.graphiql-editor-tool .view-lines').includes('"Authorization": "Bearer <your API key>"'));
    report.keyedHeadersPane = await keyed.evaluate(() => shownTextOf('.graphiql-editor-tool .view-lines').replace(/\s+/g, ' '));
  }
  report.step = 'done';
} catch (error) {
  problem(`step "${report.step}": ${error.name}: ${error.message.split('\n')[0]}`);
  // What the page showed then, to see why.
  await context.pages()[0]?.screenshot({ path: screenshotPath }).catch(() => {});
} finally {
  await context.close();
  await rm(userDataDir, { recursive: true, force: true });
}

report.blocked = [...blocked];
if (blocked.size > 0) problem(`requests left the origin: ${report.blocked.join(', ')}`);
const violations = report.consoleErrors.filter((text) => /Content Security Policy/i.test(text));
if (violations.length > 0) problem(`Content-Security-Policy violations: ${violations.join(' | ')}`);
console.log(JSON.stringify(report, null, 2));
if (report.problems.length > 0) {
  console.error(`the playground failed in the browser:\n- ${report.problems.join('\n- ')}`);
  process.exit(1);
}
