// The HubSpot projects as HubSpot's own upload tooling reads them: @hubspot/project-parsing-lib's
// translate() turns a project's *-hsmeta.json files into the intermediate representation
// `hs project upload` sends. Offline (no HubSpot account) it runs with skipValidation: it still
// finds every component, checks uids are unique, links each to its app and reports parse errors;
// validation against HubSpot's component schemas needs an account (it fetches them from HubSpot).
//
//   HSBRIDGE_PROJECT_DIR  the directory holding connector/ and functions/ (default: ..)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { translate } from '@hubspot/project-parsing-lib/translate';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.env.HSBRIDGE_PROJECT_DIR ?? path.resolve(here, '..');

async function parse(project) {
  const dir = path.join(root, project);
  const { platformVersion, srcDir } = JSON.parse(readFileSync(path.join(dir, 'hsproject.json'), 'utf8'));
  const { intermediateRepresentation, skippedHsMetaFiles } = await translate(
    { projectSourceDir: path.join(dir, srcDir), platformVersion },
    { skipValidation: true },
  );
  assert.deepEqual(skippedHsMetaFiles, [], `${project}: HubSpot's parser skipped files`);
  return Object.values(intermediateRepresentation.intermediateNodesIndexedByUid);
}

test('the connector project is one OAuth app with its webhooks and card', async () => {
  const nodes = await parse('connector');
  const byType = Object.fromEntries(nodes.map((n) => [n.componentType, n]));
  assert.deepEqual(Object.keys(byType).sort(), ['APPLICATION', 'CARD', 'WEBHOOKS']);
  const app = byType.APPLICATION;
  assert.equal(app.config.auth.type, 'oauth');
  assert.equal(byType.CARD.componentDeps.app, app.uid);
  assert.equal(byType.WEBHOOKS.componentDeps.app, app.uid);
  const target = new URL(byType.WEBHOOKS.config.settings.targetUrl);
  assert.equal(target.protocol, 'https:');
  for (const url of [...app.config.auth.redirectUrls, ...app.config.permittedUrls.fetch]) {
    assert.equal(new URL(url).host, target.host, `${url} is not on the stack's host`);
  }
});

test('the functions project is one static, private app with the SigV4 function', async () => {
  const nodes = await parse('functions');
  const app = nodes.find((n) => n.componentType === 'APPLICATION');
  assert.equal(app.config.auth.type, 'static');
  assert.equal(app.config.distribution, 'private');
  const fn = nodes.find((n) => n.componentType === 'APP_FUNCTION');
  assert.equal(fn.uid, 'call_protected_api');
  assert.equal(fn.componentDeps.app, app.uid);
  assert.ok(fn.componentDeps.serverlessPackage, 'the function is linked to its package.json');
});
