// Every *-hsmeta.json of both projects against the JSON Schemas in schema/, written from HubSpot's
// reference pages (each schema's $comment names its page). HubSpot's own schemas are fetched from
// HubSpot with an account, so these stand in for them offline.
//
//   HSBRIDGE_PROJECT_DIR  the directory holding connector/ and functions/ (default: ..)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.env.HSBRIDGE_PROJECT_DIR ?? path.resolve(here, '..');
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
for (const f of readdirSync(path.join(here, 'schema'))) {
  ajv.addSchema(JSON.parse(readFileSync(path.join(here, 'schema', f), 'utf8')));
}
const schemaFor = {
  app: 'app.schema.json',
  webhooks: 'webhooks.schema.json',
  card: 'card.schema.json',
  'app-function': 'app-function.schema.json',
};

function hsmetaFiles(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('-hsmeta.json') && !e.parentPath.includes('node_modules'))
    .map((e) => path.join(e.parentPath, e.name));
}

function check(json) {
  const validate = ajv.getSchema(`https://hsbridge.invalid/schema/${schemaFor[json.type]}`);
  assert.ok(validate, `no schema for type ${JSON.stringify(json.type)}`);
  return validate(json) ? [] : validate.errors.map((e) => `${e.instancePath} ${e.message}`);
}

test('every hsmeta file of both projects matches the shape HubSpot documents', () => {
  const files = [...hsmetaFiles(path.join(root, 'connector')), ...hsmetaFiles(path.join(root, 'functions'))];
  const types = [];
  for (const file of files) {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    types.push(json.type);
    assert.deepEqual(check(json), [], file);
  }
  assert.deepEqual(types.sort(), ['app', 'app', 'app-function', 'card', 'webhooks']);
});

test('the schemas refuse what HubSpot documents as wrong', () => {
  const read = (rel) => JSON.parse(readFileSync(path.join(here, '..', rel), 'utf8'));
  const probes = [
    ['connector/src/app/app-hsmeta.json', (j) => { j.config.auth.redirectUrls = []; }],
    ['connector/src/app/app-hsmeta.json', (j) => { j.config.permittedUrls.fetch = ['http://hooks.example.com/hubspot/relay/']; }],
    ['connector/src/app/app-hsmeta.json', (j) => { j.config.distribution = 'public'; }],
    ['functions/src/app/app-hsmeta.json', (j) => { j.config.auth.optionalScopes = ['crm.objects.deals.read']; }],
    ['connector/src/app/webhooks/webhooks-hsmeta.json', (j) => { j.config.settings.targetUrl = 'http://hooks.example.com/webhooks/hubspot'; }],
    ['connector/src/app/webhooks/webhooks-hsmeta.json', (j) => { j.config.settings.maxConcurrentRequests = 0; }],
    ['connector/src/app/webhooks/webhooks-hsmeta.json', (j) => { delete j.config.subscriptions.crmObjects[0].objectType; }],
    ['connector/src/app/webhooks/webhooks-hsmeta.json', (j) => { j.config.subscriptions.crmObjects[0].subscriptionType = 'contact.creation'; }],
    ['connector/src/app/webhooks/webhooks-hsmeta.json', (j) => { delete j.config.subscriptions.legacyCrmObjects[0].propertyName; }],
    ['connector/src/app/cards/relay-card-hsmeta.json', (j) => { j.config.entrypoint = 'RelayCard.jsx'; }],
    ['functions/src/app/functions/call-protected-api-hsmeta.json', (j) => { j.uid = 'call protected api'; }],
  ];
  for (const [rel, spoil] of probes) {
    const json = read(rel);
    assert.deepEqual(check(json), [], `${rel} as checked in`);
    spoil(json);
    assert.notDeepEqual(check(json), [], `${rel} spoiled by ${spoil}`);
  }
});
