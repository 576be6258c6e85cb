// The contact card as HubSpot renders it: RelayCard.jsx bundled with esbuild (JSX only; React and
// @hubspot/ui-extensions stay HubSpot's own packages) and rendered with the renderer HubSpot ships
// for testing UI extensions (@hubspot/ui-extensions/testing, createRenderer; offline, no account).
// `hubspot.fetch` is the worker's `self.hsFetch`; each test answers it as the relay would, so
// what is checked here is the card's loading, answer and error states. That the request itself
// reaches hsbridge's relay the way hubspot.fetch sends it is the browser suite's card test.
// https://developers.hubspot.com/docs/apps/developer-platform/add-features/ui-extensibility/fetching-data

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import React from 'react';
import { Alert, Button, LoadingSpinner, Text } from '@hubspot/ui-extensions';
import { createRenderer } from '@hubspot/ui-extensions/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.env.HSBRIDGE_PROJECT_DIR ?? path.resolve(here, '..');
const card = path.join(root, 'connector/src/app/cards/RelayCard.jsx');

let out;
let RelayCard;
let answer;
const requests = [];

before(async () => {
  // Inside check/ so that the bundle's imports of react and @hubspot/ui-extensions resolve to
  // check/node_modules, the same copies the renderer uses.
  out = mkdtempSync(path.join(here, '.card-build-'));
  const file = path.join(out, 'RelayCard.mjs');
  await build({
    entryPoints: [card],
    bundle: true,
    format: 'esm',
    jsx: 'automatic',
    platform: 'neutral',
    external: ['react', 'react/*', '@hubspot/ui-extensions'],
    outfile: file,
    logLevel: 'error',
  });
  globalThis.self = globalThis;
  globalThis.hsFetch = (url, options) => {
    requests.push({ url, options });
    return answer();
  };
  ({ RelayCard } = await import(pathToFileURL(file).href));
});

after(() => rmSync(out, { recursive: true, force: true }));

function renderCard() {
  requests.length = 0;
  const renderer = createRenderer('crm.record.tab');
  renderer.render(React.createElement(RelayCard, { context: renderer.mocks.context }));
  return renderer;
}

test('the card shows a spinner, then what the protected API answered', async () => {
  answer = async () => new Response('{"contact":"123","tier":"gold"}', { status: 200 });
  const { maybeFind, findAll, waitFor, mocks } = renderCard();
  assert.ok(maybeFind(LoadingSpinner), 'no loading state before the answer');
  await waitFor(() => assert.equal(findAll(Text).length, 2));
  const [status, body] = findAll(Text).map((t) => t.text);
  assert.equal(status, 'The protected API answered 200');
  assert.deepEqual(JSON.parse(body), { contact: '123', tier: 'gold' });
  assert.equal(maybeFind(LoadingSpinner), null);
  // One GET of the relay URL for this record, with a timeout below hubspot.fetch's 15 s default.
  assert.equal(requests.length, 1);
  assert.equal(requests[0].url, `https://hooks.example.com/hubspot/relay/contacts/${mocks.context.crm.objectId}`);
  assert.equal(requests[0].options.method, 'GET');
  assert.ok(requests[0].options.timeout < 15000);
});

test('a refusal from the relay is an error with the status and a way to try again', async () => {
  answer = async () => new Response('{"error":"protected_api_unavailable"}', { status: 503 });
  const { find, maybeFind, waitFor } = renderCard();
  await waitFor(() => assert.ok(maybeFind(Alert)));
  const alert = find(Alert);
  assert.equal(alert.props.variant, 'error');
  assert.equal(alert.props.title, 'The protected API could not answer');
  assert.match(alert.text, /the relay answered 503/);
  assert.equal(maybeFind(Text), null, 'an error must not render as an answer');

  // Trying again calls the relay once more and shows its answer.
  answer = async () => new Response('{"ok":true}', { status: 200 });
  find(Button).trigger('onClick');
  await waitFor(() => assert.equal(maybeFind(Alert), null));
  await waitFor(() => assert.ok(maybeFind(Text)));
  assert.equal(requests.length, 2);
});

test('an unreachable relay is an error, not a spinner that never ends', async () => {
  answer = async () => {
    throw new Error('connect ETIMEDOUT');
  };
  const { find, maybeFind, waitFor } = renderCard();
  await waitFor(() => assert.ok(maybeFind(Alert)));
  assert.match(find(Alert).text, /could not be reached \(connect ETIMEDOUT\)/);
  assert.equal(maybeFind(LoadingSpinner), null);
});
