// The app function in HubSpot's own local function runner (@hubspot/app-functions-dev-server's
// executeFunction, which `hs project dev` uses), against the SigV4-verifying stand-in. The runner
// runs offline, but it still reads the older project layout (an `app.functions/serverless.json`
// manifest), so this test builds that manifest from the project's (2026.09, same as 2026.03) `functions/*-hsmeta.json`:
// the entry point and the secret names are the checked-in ones.
//
//   SIGV4_STANDIN_BIN  the stand-in (default: ../../../target/debug/sigv4-standin)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { executeFunction } = require('@hubspot/app-functions-dev-server');

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.resolve(here, '../functions/src/app');
const standinBin = process.env.SIGV4_STANDIN_BIN ?? path.resolve(here, '../../../target/debug/sigv4-standin');
const KEY_ID = 'AKIAHSBRIDGERUNNER01';
const SECRET = 'hsbridge-runner-test-secret-0123456789abcd';
const PRINCIPAL = 'arn:aws:iam::111122223333:user/hubspot-function-caller';

let standin;
let base;
let shim;

before(async () => {
  standin = spawn(standinBin, ['--addr', '127.0.0.1:0', '--region', 'eu-west-1'], {
    env: { PATH: process.env.PATH, STANDIN_ACCESS_KEY_ID: KEY_ID, STANDIN_SECRET_ACCESS_KEY: SECRET, STANDIN_PRINCIPAL_ARN: PRINCIPAL },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise((resolve, reject) => {
    standin.once('error', (e) => reject(new Error(`cannot start ${standinBin}: ${e.message}`)));
    readline.createInterface({ input: standin.stdout }).once('line', resolve);
  });
  base = /^listening on (http:\/\/\S+)$/.exec(line)[1];

  const meta = JSON.parse(readFileSync(path.join(appDir, 'functions/call-protected-api-hsmeta.json'), 'utf8'));
  shim = mkdtempSync(path.join(tmpdir(), 'hsbridge-runner-'));
  const functions = path.join(shim, 'app', 'app.functions');
  mkdirSync(functions, { recursive: true });
  const file = path.basename(meta.config.entrypoint);
  // A link, so the function resolves its dependencies (aws4) from its own folder.
  symlinkSync(path.join(appDir, 'functions', file), path.join(functions, file));
  writeFileSync(
    path.join(functions, 'serverless.json'),
    JSON.stringify({ appFunctions: { [meta.uid]: { file, secrets: meta.config.secretKeys } } }),
  );
});

after(() => {
  standin?.kill();
  if (shim) rmSync(shim, { recursive: true, force: true });
});

function run(secrets) {
  const saved = { ...process.env };
  Object.assign(process.env, secrets);
  const config = {
    accountId: 987654,
    app: { path: path.join(shim, 'app') },
    functionTimeoutMs: 10_000,
    // Nothing may be fetched from HubSpot: these origins lead nowhere.
    hubspotApiOrigin: 'http://127.0.0.1:9',
    hubspotWebsiteOrigin: 'http://127.0.0.1:9',
    logger: { debug() {}, info() {}, warn() {}, error: console.error },
    platformVersion: '2023.2',
  };
  return new Promise((resolve, reject) => {
    executeFunction(config, 'call_protected_api', { parameters: { objectId: '12345' } }, resolve)
      .catch(reject)
      .finally(() => {
        process.env = saved;
      });
  });
}

const secrets = () => ({
  HSBRIDGE_CALLER_ACCESS_KEY_ID: KEY_ID,
  HSBRIDGE_CALLER_SECRET_ACCESS_KEY: SECRET,
  HSBRIDGE_PROTECTED_API_REGION: 'eu-west-1',
  HSBRIDGE_PROTECTED_API_URL: `${base}/prod`,
});

test("HubSpot's function runner runs call_protected_api and the stand-in verifies its SigV4", async () => {
  const result = await run(secrets());
  assert.equal(result.statusCode, 200, JSON.stringify(result));
  const answered = JSON.parse(result.body);
  assert.equal(answered.caller, PRINCIPAL);
  assert.equal(answered.path, '/prod/hubspot/context');
});

test("in HubSpot's function runner a wrong secret key is refused by the API", async () => {
  const result = await run({ ...secrets(), HSBRIDGE_CALLER_SECRET_ACCESS_KEY: 'wrong-secret-wrong-secret-wrong-secret-00' });
  assert.equal(result.statusCode, 403, JSON.stringify(result));
});
