// The OAuth install in a real browser: headless Chromium (Debian's `chromium`, driven by
// playwright-core) against `hsbridge dev --hubspot-sim`.
//
// The callback is served as 127.0.0.1 and the HubSpot simulator as localhost: two sites, as
// HubSpot and a deployed stack are. A successful install proves that the SameSite=Lax state
// cookie set on 127.0.0.1 comes back on the cross-site redirect from the simulator; deleting the
// cookie before approving must end on the refusal page.
//
//   HSBRIDGE_BIN   the hsbridge binary (default: ../../target/debug/hsbridge)
//   CHROMIUM_PATH  the browser (default: /usr/bin/chromium)
//   SCREENSHOTS    a directory to save screenshots of each page into (optional)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
      if (match && out.includes('Next:')) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
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
