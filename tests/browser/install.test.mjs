// The OAuth install in a real browser: headless Chromium (Debian's `chromium`, driven by
// playwright-core) against `hsbridge dev --hubspot-sim`.
//
// The callback is served as 127.0.0.1 and the HubSpot simulator as localhost: two sites, as
// HubSpot and a deployed stack are. A successful install proves that the SameSite=Lax state
// cookie set on 127.0.0.1 comes back on the cross-site redirect from the simulator; deleting the
// cookie before approving must end on the refusal page. An install started on HubSpot's side
// (its install link: no state) must restart through /oauth/install and complete.
//
//   HSBRIDGE_BIN   the hsbridge binary (default: ../../target/debug/hsbridge)
//   CHROMIUM_PATH  the browser (default: /usr/bin/chromium)
//   SCREENSHOTS    a directory to save screenshots of each page into (optional)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = process.env.HSBRIDGE_BIN ?? path.resolve(here, '../../target/debug/hsbridge');
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const screenshots = process.env.SCREENSHOTS;
// hsbridge dev's logs (stderr) go to <dir>/browser-dev.log for scripts/check-log-hygiene.
const logDir = process.env.HSBRIDGE_TEST_LOG_DIR ?? path.resolve(here, '../../target/test-logs');

let dev;
let dataDir;
let installUrl;
let hubspotInstallLink;
let browser;

/** A file descriptor for `<logDir>/<name>.log`, truncated. */
function logFile(name) {
  mkdirSync(logDir, { recursive: true });
  return openSync(path.join(logDir, `${name}.log`), 'w');
}

/** Starts `hsbridge dev --hubspot-sim` on free ports and reads the install URL it prints. */
function startDev() {
  dataDir = mkdtempSync(path.join(tmpdir(), 'hsbridge-browser-'));
  const child = spawn(
    bin,
    ['dev', '--hubspot-sim', '--addr', '127.0.0.1:0', '--protected-addr', '127.0.0.1:0', '--data-dir', dataDir],
    {
      stdio: ['ignore', 'pipe', logFile('browser-dev')],
      env: {
        ...process.env,
        HUBSPOT_CLIENT_SECRET: '',
        RUST_LOG: process.env.RUST_LOG ?? 'info,hsbridge=debug',
        NO_COLOR: '1',
      },
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`hsbridge dev printed no banner:\n${out}`)), 20_000);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`hsbridge dev exited (${code}):\n${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/install\s+(http:\/\/127\.0\.0\.1:\d+\/oauth\/install)/);
      const link = out.match(/install link\s+(http:\/\/localhost:\d+\S+)/);
      if (match && link && out.includes('Next:')) {
        clearTimeout(timer);
        resolve({ child, url: match[1], link: link[1] });
      }
    });
  });
}

async function shot(page, name) {
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: path.join(screenshots, `${name}.png`) });
}

before(async () => {
  assert.ok(existsSync(bin), `no hsbridge binary at ${bin}: build it (cargo build -p hsbridge) or set HSBRIDGE_BIN`);
  assert.ok(
    existsSync(executablePath),
    `no Chromium at ${executablePath}: ./scripts/test installs Debian's chromium, or set CHROMIUM_PATH`,
  );
  const started = await startDev();
  dev = started.child;
  installUrl = started.url;
  hubspotInstallLink = started.link;
  // Root in a container: Chromium's sandbox needs user namespaces it may not have.
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  dev?.removeAllListeners('exit');
  dev?.kill();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('the install survives the cross-site redirect through HubSpot and lands on the success page', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(installUrl);

  // On HubSpot's (the simulator's) page, another site than the callback.
  const authorize = new URL(page.url());
  assert.equal(authorize.hostname, 'localhost');
  assert.match(authorize.pathname, /\/hubspot-sim\/oauth\/authorize$/);
  await shot(page, '1-authorize');

  const [cookie] = (await context.cookies(installUrl)).filter((c) => c.name === 'hubspot_oauth_state');
  assert.ok(cookie, 'the state cookie was set on the callback site');
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.httpOnly, true);
  // The loopback cookie has no Secure, so it cannot carry the __Host- prefix (deployed callbacks
  // use __Host-hubspot_oauth_state; Path=/); its Path is the callback's directory, so it is sent
  // to the callback wherever that is mounted.
  assert.equal(cookie.secure, false);
  const callbackPath = new URL(authorize.searchParams.get('redirect_uri')).pathname;
  assert.equal(cookie.path, callbackPath.slice(0, callbackPath.lastIndexOf('/')));
  assert.equal(cookie.path, '/oauth');

  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/oauth/callback')),
    page.click('#approve'),
  ]);
  await page.waitForLoadState();
  assert.equal(response.status(), 200);
  const landed = new URL(page.url());
  assert.equal(landed.hostname, '127.0.0.1');
  assert.equal(landed.pathname, '/oauth/callback');
  assert.match(await page.textContent('body'), /The app is installed/);
  await shot(page, '2-installed');

  // The cookie is single-use: the callback cleared it.
  const left = (await context.cookies(installUrl)).filter((c) => c.name === 'hubspot_oauth_state');
  assert.equal(left.length, 0);
  await context.close();
});

test('without the state cookie the callback refuses the install', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(installUrl);
  assert.equal(new URL(page.url()).hostname, 'localhost');
  await context.clearCookies();

  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/oauth/callback')),
    page.click('#approve'),
  ]);
  await page.waitForLoadState();
  assert.equal(response.status(), 400);
  const text = await page.textContent('body');
  assert.match(text, /not valid or has expired/);
  assert.doesNotMatch(text, /installed/);
  await shot(page, '3-refused');
  await context.close();
});

test('an install started on HubSpot\'s side restarts through /oauth/install and completes', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // HubSpot's install link: its authorize page, no state, no cookie on the callback's site.
  await page.goto(hubspotInstallLink);
  assert.equal(new URL(page.url()).hostname, 'localhost');
  assert.equal(new URL(page.url()).searchParams.get('state'), null);
  assert.equal((await context.cookies(installUrl)).length, 0);

  // Approving sends a code without state to the callback, which does not exchange it but restarts
  // the flow: /oauth/install sets the state cookie and sends the browser back to HubSpot.
  const seen = [];
  page.on('response', (r) => seen.push([new URL(r.url()).pathname, r.status()]));
  await page.click('#approve');
  await page.waitForURL((u) => u.pathname.endsWith('/oauth/authorize') && u.searchParams.get('state'));
  assert.deepEqual(
    seen.filter(([p]) => p.startsWith('/oauth/')).map(([p, s]) => `${p} ${s}`),
    ['/oauth/callback 302', '/oauth/install 302'],
  );
  const [cookie] = (await context.cookies(installUrl)).filter((c) => c.name === 'hubspot_oauth_state');
  assert.ok(cookie, 'the restarted flow set the state cookie');
  await shot(page, '4-restarted');

  // HubSpot asks again (the real one approves an already approved app at once); the code now
  // carries the fresh state and the install completes.
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/oauth/callback')),
    page.click('#approve'),
  ]);
  await page.waitForLoadState();
  assert.equal(response.status(), 200);
  assert.match(await page.textContent('body'), /The app is installed/);
  await context.close();
});

// The contact card's call, sent the way hubspot.fetch sends it: HubSpot appends the caller's
// context to the query and signs the final URL with v3 (custom headers are not sent).
// https://developers.hubspot.com/docs/apps/developer-platform/add-features/ui-extensibility/fetching-data
const V3_ESCAPES = { '%3A': ':', '%2F': '/', '%3F': '?', '%40': '@', '%21': '!', '%24': '$', '%27': "'", '%28': '(', '%29': ')', '%2A': '*', '%2C': ',', '%3B': ';' };

function hubspotFetchAs(secret, context) {
  return async (url, options = {}) => {
    const final = new URL(url);
    for (const [k, v] of Object.entries(context)) final.searchParams.append(k, v);
    const uri = final.toString();
    const method = options.method ?? 'GET';
    const timestamp = String(Date.now());
    const signed = uri.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/g, (m) => V3_ESCAPES[m]);
    const signature = createHmac('sha256', secret).update(method + signed + timestamp).digest('base64');
    return fetch(uri, {
      method,
      headers: { 'x-hubspot-signature-v3': signature, 'x-hubspot-request-timestamp': timestamp },
      signal: AbortSignal.timeout(options.timeout ?? 15000),
    });
  };
}

test('the contact card\'s hubspot.fetch call reaches the relay and its answer becomes the card\'s view', async () => {
  // hsbridge dev renders the HubSpot projects with its own URLs, marked as local.
  const project = path.join(dataDir, 'hubspot-project');
  assert.ok(existsSync(path.join(project, 'LOCAL-ONLY.md')));
  const hooks = JSON.parse(readFileSync(path.join(project, 'connector/src/app/webhooks/webhooks-hsmeta.json'), 'utf8'));
  assert.equal(hooks.config.settings.targetUrl, new URL('/webhooks/hubspot', installUrl).toString());
  const { RELAY_URL } = await import(pathToFileURL(path.join(project, 'connector/src/app/cards/relay-url.js')));
  assert.equal(RELAY_URL, new URL('/hubspot/relay/', installUrl).toString());
  const app = JSON.parse(readFileSync(path.join(project, 'connector/src/app/app-hsmeta.json'), 'utf8'));
  assert.ok(app.config.permittedUrls.fetch.includes(RELAY_URL));

  // The card's own module, as checked in.
  const { callRelay } = await import(pathToFileURL(path.resolve(here, '../../infra/hubspot-project/connector/src/app/cards/relay.js')));
  const env = readFileSync(path.join(dataDir, 'env'), 'utf8');
  const secret = env.match(/HUBSPOT_CLIENT_SECRET='([^']+)'/)[1];
  const context = { appId: '54321', portalId: '62515', userId: '7', userEmail: 'card.user@example.com' };

  const loaded = await callRelay(hubspotFetchAs(secret, context), RELAY_URL, '123');
  assert.equal(loaded.state, 'loaded', JSON.stringify(loaded));
  assert.equal(loaded.status, 200);
  const answered = JSON.parse(loaded.body);
  assert.equal(answered.method, 'GET');
  assert.equal(answered.path, '/hubspot/relay/contacts/123');
  assert.match(answered.caller, /hsbridge-local-caller/);

  // Signed with another secret: the relay refuses, and the card shows an error state.
  const refused = await callRelay(hubspotFetchAs('not-the-secret', context), RELAY_URL, '123');
  assert.equal(refused.state, 'error');
  assert.match(refused.message, /the relay answered 401/);
  // A record id that is not a number never leaves the card.
  const bad = await callRelay(() => assert.fail('no request may be sent'), RELAY_URL, '1/../../webhooks');
  assert.equal(bad.state, 'error');
});
