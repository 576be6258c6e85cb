'use strict';

// HubSpot app function: calls the company's API Gateway (AWS_IAM authorization) with a request
// signed by AWS Signature Version 4, using the least-privilege caller's access key held in HubSpot
// secrets. HubSpot publishes no stable outbound IP ranges, so the signature, not the source address,
// is what API Gateway trusts.
//
// Secret values are never logged, returned or put in an error message.

const aws4 = require('aws4');

const SECRET_NAMES = Object.freeze([
  'HSBRIDGE_CALLER_ACCESS_KEY_ID',
  'HSBRIDGE_CALLER_SECRET_ACCESS_KEY',
  'HSBRIDGE_PROTECTED_API_REGION',
  'HSBRIDGE_PROTECTED_API_URL',
]);
const RESOURCE_PATH = '/hubspot/context';
const TIMEOUT_MS = 8000;

class MissingSecretError extends Error {
  constructor(name) {
    super(
      `Secret ${name} is not set for this function: add it with "hs secret add ${name}" ` +
        'and keep it listed in config.secretKeys.',
    );
    this.name = 'MissingSecretError';
    this.secretName = name;
  }
}

/** Reads the four secrets from `env`; throws MissingSecretError naming the first one missing. */
function readSecrets(env) {
  const secrets = {};
  for (const name of SECRET_NAMES) {
    const value = env[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new MissingSecretError(name);
    }
    secrets[name] = value.trim();
  }
  return secrets;
}

/** `YYYYMMDD'T'HHMMSS'Z'`, the form SigV4 signs. */
function amzDate(date) {
  return date.toISOString().replace(/[:-]|\.\d{3}/g, '');
}

/** The portal and record the call is about, from the function's context. */
function payloadFrom(context) {
  const parameters = (context && context.parameters) || {};
  const portalId = parameters.portalId ?? context?.accountId ?? context?.portalId ?? null;
  const objectId = parameters.objectId ?? parameters.hs_object_id ?? null;
  return { portalId, objectId };
}

/**
 * Builds the signed request: POST `${HSBRIDGE_PROTECTED_API_URL}/hubspot/context` with a JSON
 * body, signed for service `execute-api` in the configured region. `now` fixes the signing time.
 */
function buildSignedRequest(secrets, payload, now) {
  const base = secrets.HSBRIDGE_PROTECTED_API_URL.replace(/\/+$/, '');
  let url;
  try {
    url = new URL(base + RESOURCE_PATH);
  } catch {
    throw new Error('Secret HSBRIDGE_PROTECTED_API_URL is not an absolute URL (https://...).');
  }
  const body = JSON.stringify(payload);
  const request = {
    host: url.host,
    path: url.pathname + url.search,
    method: 'POST',
    service: 'execute-api',
    region: secrets.HSBRIDGE_PROTECTED_API_REGION,
    headers: {
      'Content-Type': 'application/json',
      'X-Amz-Date': amzDate(now),
    },
    body,
  };
  aws4.sign(request, {
    accessKeyId: secrets.HSBRIDGE_CALLER_ACCESS_KEY_ID,
    secretAccessKey: secrets.HSBRIDGE_CALLER_SECRET_ACCESS_KEY,
  });
  // fetch derives Host (and Content-Length) from the URL and body: the same values aws4 signed.
  const headers = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (lower !== 'host' && lower !== 'content-length') headers[name] = String(value);
  }
  return { url: url.toString(), init: { method: 'POST', headers, body } };
}

/**
 * The function's work, with its dependencies injectable for tests: reads the secrets from `env`,
 * signs and sends the request, and returns `{ statusCode, body }` with the API's answer.
 */
async function callProtectedApi({
  context = {},
  env = process.env,
  fetch = globalThis.fetch,
  now = () => new Date(),
  timeoutMs = TIMEOUT_MS,
} = {}) {
  const secrets = readSecrets(env);
  const { url, init } = buildSignedRequest(secrets, payloadFrom(context), now());
  let response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const timedOut = error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return {
      statusCode: timedOut ? 504 : 502,
      body: JSON.stringify({
        message: timedOut
          ? `The protected API did not answer within ${timeoutMs} ms.`
          : 'The protected API could not be reached.',
      }),
    };
  }
  return { statusCode: response.status, body: await response.text() };
}

exports.main = async (context = {}) => callProtectedApi({ context });
exports.callProtectedApi = callProtectedApi;
exports.buildSignedRequest = buildSignedRequest;
exports.readSecrets = readSecrets;
exports.MissingSecretError = MissingSecretError;
exports.SECRET_NAMES = SECRET_NAMES;
