// The evaluation must be able to fail: call logs with a call the template does not allow, a
// resource it cannot place and a role that made no call are each refused with their reason.
// Needs the translated template scripts/test writes (target/iam/translated.json, or
// HSBRIDGE_TRANSLATED_TEMPLATE).

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import test from 'node:test'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const translated =
  process.env.HSBRIDGE_TRANSLATED_TEMPLATE ?? path.join(here, '..', '..', 'target', 'iam', 'translated.json')
const KEY = 'arn:aws:kms:us-east-1:123456789012:key/0f0f0f0f-1111-2222-3333-444444444444'

function evaluate(lines) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hsbridge-iam-'))
  const log = path.join(dir, 'calls.jsonl')
  fs.writeFileSync(log, lines.map((l) => JSON.stringify(l)).join('\n') + '\n')
  const run = spawnSync(process.execPath, [path.join(here, 'evaluate.mjs'), translated, log], { encoding: 'utf8' })
  fs.rmSync(dir, { recursive: true })
  return { status: run.status, out: run.stdout + run.stderr }
}

const call = (caller, service, action, resource, extra = {}) => ({
  service,
  operation: action.split(':')[1],
  action,
  resource,
  caller,
  region: 'us-east-1',
  status: 200,
  ...extra
})
const createKey = call('testing', 'kms', 'kms:CreateKey', KEY, { tags: { 'hsbridge:logical-id': 'TokenKey' } })
const table = (name) => `arn:aws:dynamodb:us-east-1:123456789012:table/${name}`

test('an intake that decrypts under the token key is refused, key policy and all', () => {
  const { status, out } = evaluate([
    createKey,
    call('WebhookIntakeRole', 'kms', 'kms:Decrypt', KEY, { encryptionContext: { hub_id: '62515' } })
  ])
  assert.equal(status, 1, out)
  assert.match(out, /recorded call denied \(ImplicitlyDenied\): WebhookIntakeRole kms:Decrypt/)
})

test('a callback that decrypts a token without its account context is refused', () => {
  const { status, out } = evaluate([createKey, call('OAuthCallbackRole', 'kms', 'kms:Decrypt', KEY)])
  assert.equal(status, 1, out)
  assert.match(out, /recorded call denied \(ExplicitlyDenied\): OAuthCallbackRole kms:Decrypt/)
})

test('the same call with the context is allowed', () => {
  const { out } = evaluate([
    createKey,
    call('OAuthCallbackRole', 'kms', 'kms:Decrypt', KEY, { encryptionContext: { hub_id: '62515' } })
  ])
  assert.doesNotMatch(out, /recorded call denied/)
})

test('a call on a resource no template resource plays is refused with its name', () => {
  const { status, out } = evaluate([call('WebhookIntakeRole', 'dynamodb', 'dynamodb:PutItem', table('scratch-1'))])
  assert.equal(status, 1, out)
  assert.match(out, /cannot tell which template resource this is: table table\/scratch-1/)
})

test('a role that made no call fails the evaluation, and so does a role the template lacks', () => {
  const { status, out } = evaluate([
    call('WebhookIntakeRole', 'dynamodb', 'dynamodb:BatchGetItem', table('dedupe-1')),
    call('ReportingRole', 'dynamodb', 'dynamodb:Scan', table('accounts-1'))
  ])
  assert.equal(status, 1, out)
  assert.match(out, /no recorded call of OAuthCallbackRole/)
  assert.match(out, /signed as ReportingRole, which is no role of the template/)
  assert.doesNotMatch(out, /recorded call denied/)
})
