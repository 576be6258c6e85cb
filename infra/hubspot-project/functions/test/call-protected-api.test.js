'use strict';

// Runs the app function against the SigV4-verifying API Gateway stand-in (the Rust binary
// `sigv4-standin`), which checks signatures independently of any AWS SDK.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { createHash } = require('node:crypto');
const path = require('node:path');
const readline = require('node:readline');

const {
  callProtectedApi,
  MissingSecretError,
  SECRET_NAMES,
} = require('../src/app/functions/CallProtectedApi.js');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const STANDIN_BIN =
  process.env.SIGV4_STANDIN_BIN || path.join(REPO_ROOT, 'target', 'debug', 'sigv4-standin');

// Test-only credential, known to the stand-in and nowhere else.
const ACCESS_KEY_ID = 'AKIAHSBRIDGETESTKEY1';
const SECRET_ACCESS_KEY = 'hsbridge-test-secret-access-key-0123456789';
const PRINCIPAL_ARN = 'arn:aws:iam::111122223333:user/hubspot-function-caller';
const REGION = 'eu-west-1';

let standin;
let baseUrl;

before(async () => {
  standin = spawn(STANDIN_BIN, ['--addr', '127.0.0.1:0', '--region', REGION], {
    env: {
      PATH: process.env.PATH,
      STANDIN_ACCESS_KEY_ID: ACCESS_KEY_ID,
      STANDIN_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
      STANDIN_PRINCIPAL_ARN: PRINCIPAL_ARN,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sigv4-standin did not start within 10 s')), 10_000);
    standin.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${STANDIN_BIN}: ${error.message}`));
    });
    standin.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sigv4-standin exited early with code ${code}`));
    });
    readline.createInterface({ input: standin.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const match = /^listening on (http:\/\/\S+)$/.exec(line);
      if (match) resolve(match[1]);
      else reject(new Error(`unexpected first line from sigv4-standin: ${line}`));
    });
  });
});

after(() => {
  if (standin && standin.exitCode === null) standin.kill();
});

function envFor(overrides = {}) {
  return {
    HSBRIDGE_CALLER_ACCESS_KEY_ID: ACCESS_KEY_ID,
    HSBRIDGE_CALLER_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    HSBRIDGE_PROTECTED_API_REGION: REGION,
    // A stage in the base URL, as with a real execute-api URL.
    HSBRIDGE_PROTECTED_API_URL: `${baseUrl}/prod/`,
    ...overrides,
  };
}

const context = { accountId: 987654, parameters: { objectId: '12345' } };

test('a signed call reaches the protected API as the caller principal', async () => {
  const result = await callProtectedApi({ context, env: envFor() });
  assert.equal(result.statusCode, 200, result.body);
  const answer = JSON.parse(result.body);
  assert.equal(answer.caller, PRINCIPAL_ARN);
  assert.equal(answer.accessKeyId, ACCESS_KEY_ID);
  assert.equal(answer.method, 'POST');
  assert.equal(answer.path, '/prod/hubspot/context');
  const sentBody = JSON.stringify({ portalId: 987654, objectId: '12345' });
  assert.equal(answer.bodySha256, createHash('sha256').update(sentBody).digest('hex'));
});

test('a wrong secret access key is refused with 403', async () => {
  const result = await callProtectedApi({
    context,
    env: envFor({ HSBRIDGE_CALLER_SECRET_ACCESS_KEY: 'not-the-right-secret' }),
  });
  assert.equal(result.statusCode, 403);
  assert.match(JSON.parse(result.body).message, /signature we calculated does not match/);
});

test('an unknown access key is refused with 403', async () => {
  const result = await callProtectedApi({
    context,
    env: envFor({ HSBRIDGE_CALLER_ACCESS_KEY_ID: 'AKIAUNKNOWNKEY000000' }),
  });
  assert.equal(result.statusCode, 403);
  assert.equal(
    JSON.parse(result.body).message,
    'The security token included in the request is invalid.',
  );
});

test('a request signed more than five minutes ago is refused as expired', async () => {
  const result = await callProtectedApi({
    context,
    env: envFor(),
    now: () => new Date(Date.now() - 6 * 60 * 1000),
  });
  assert.equal(result.statusCode, 403);
  assert.match(JSON.parse(result.body).message, /^Signature expired: /);
});

test('a request signed for another region is refused with 403', async () => {
  const result = await callProtectedApi({
    context,
    env: envFor({ HSBRIDGE_PROTECTED_API_REGION: 'us-east-1' }),
  });
  assert.equal(result.statusCode, 403);
});

for (const missing of SECRET_NAMES) {
  test(`a missing ${missing} fails clearly without calling out`, async () => {
    const env = envFor();
    delete env[missing];
    let called = false;
    const fetch = async () => {
      called = true;
      throw new Error('must not be called');
    };
    await assert.rejects(callProtectedApi({ context, env, fetch }), (error) => {
      assert.ok(error instanceof MissingSecretError);
      assert.equal(error.secretName, missing);
      assert.match(error.message, new RegExp(`^Secret ${missing} is not set`));
      for (const value of Object.values(env)) assert.ok(!error.message.includes(value));
      return true;
    });
    assert.equal(called, false);
  });
}

test('an API that does not answer in time gives 504 without hanging', async () => {
  const fetch = (url, init) =>
    new Promise((_, reject) => {
      init.signal.addEventListener('abort', () => reject(init.signal.reason));
    });
  const result = await callProtectedApi({ context, env: envFor(), fetch, timeoutMs: 50 });
  assert.equal(result.statusCode, 504);
});
