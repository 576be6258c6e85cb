// Every AWS call the test suites made as one of the template's roles, evaluated against that
// role's policies in the translated template, with IAM's documented evaluation logic
// (@cloud-copilot/iam-simulate; see simulate.mjs). Run by scripts/test after the suites:
//
//   node tests/iam/evaluate.mjs TRANSLATED_TEMPLATE.json CALL_LOG.jsonl [REPORT.json]
//
// It fails (exit status 1, each reason named) when
//   - a recorded call of a role is not allowed (identity policies, and the key policy for KMS);
//   - a call the services make with KMS on the role's behalf (modelled below: moto makes none)
//     is not allowed;
//   - a probe that must be denied is allowed, or a probe that must be allowed is denied;
//   - a (statement, action, resource) grant of a role is used by no call and is not listed in
//     KEPT with the reason it stays;
//   - a role of the template made no recorded call at all (the attribution broke), or a call's
//     resource cannot be told apart as one of the template's resources.
// The call log's format is in docs/testing-stand.md.

import fs from 'node:fs'
import { decide } from './simulate.mjs'
import { ACCOUNT, REGION, Template } from './template.mjs'

const [templatePath, logPath, reportPath] = process.argv.slice(2)
if (!templatePath || !logPath) {
  console.error('usage: node tests/iam/evaluate.mjs TRANSLATED_TEMPLATE.json CALL_LOG.jsonl [REPORT.json]')
  process.exit(2)
}

const template = new Template(JSON.parse(fs.readFileSync(templatePath, 'utf8')))
const failures = []
const fail = (text) => failures.push(text)

// ------------------------------------------------------------------ grants kept without a call

// Grants no process here can exercise, each with the reason it stays. Keyed by
// "<policy>/<Sid>/<action pattern>" for every role.
const KEPT_FOR_EVERY_ROLE = {
  'OwnLogGroup/logs:CreateLogStream':
    'Lambda writes the function’s logs to its log group with the execution role; no test process writes to CloudWatch Logs',
  'OwnLogGroup/logs:PutLogEvents': 'as logs:CreateLogStream',
  'XRayHasNoResourceLevelPermissions/xray:PutTraceSegments':
    'Lambda’s X-Ray integration (Tracing: Active) sends trace segments with the execution role; not emulated',
  'XRayHasNoResourceLevelPermissions/xray:PutTelemetryRecords': 'as xray:PutTraceSegments',
  'DataKeyOnlyThroughItsServices/kms:Encrypt':
    'not in the documented per-request model below (DynamoDB and Secrets Manager reads: Decrypt; SQS sends: GenerateDataKey and Decrypt); kept as the set AWS documents for a key used through DynamoDB, which moto cannot show to be unused: a deployment’s CloudTrail can',
  'DataKeyOnlyThroughItsServices/kms:ReEncrypt*': 'as kms:Encrypt',
  'DataKeyOnlyThroughItsServices/kms:DescribeKey': 'as kms:Encrypt',
  'DataKeyOnlyThroughItsServices/kms:GenerateDataKey*':
    'used for SQS sends (the intake); for the other roles as kms:Encrypt'
}
// "<role>/<Sid>/<action pattern>": none today.
const KEPT_FOR_ONE_ROLE = {
  'ApiCallerRole/AlertsOnTheDefaultBus/events:PutEvents':
    'the alerts suite (tests/integration/trace_alerts.rs) sends PutEvents to moto with the test\'s own credentials, and the recorder does not yet carry the events:source condition key the grant tests; the grant is checked by cfn-lint, checkov and the invoke-grant check only'
}

// ------------------------------------------------------------------ principals

const roles = template.ofType('AWS::IAM::Role')
const roleArn = (id) => template.getAtt(id, 'Arn')
const sessionArn = (id) => `arn:aws:sts::${ACCOUNT}:assumed-role/${template.physical(id).name}/${id}`
const users = template.ofType('AWS::IAM::User')

function principal(id) {
  const isRole = roles.includes(id)
  return {
    id,
    arn: isRole ? sessionArn(id) : template.getAtt(id, 'Arn'),
    principalArn: isRole ? roleArn(id) : template.getAtt(id, 'Arn'),
    policies: template.policiesOf(id)
  }
}

// ------------------------------------------------------------------ resources

const STAND_PREFIXES = {
  'AWS::DynamoDB::Table': [
    ['dedupe-', 'DedupeTable'],
    ['accounts-', 'AccountsTable'],
    ['rate-', 'RateTable']
  ],
  'AWS::SQS::Queue': [
    ['events-dlq-', 'EventsDeadLetterQueue'],
    ['events-', 'EventsQueue']
  ],
  'AWS::SecretsManager::Secret': [['hubspot-app-', 'HubSpotAppSecret']]
}

/**
 * The template resource a physical name plays: a name holding the logical id as a `-` segment
 * (CloudFormation's `stack-LogicalId-SUFFIX`), the template's own physical name, or the test
 * stand's prefix for that resource (`tests/src/aws.rs` callers name tables `accounts-…`, …).
 */
function logicalFor(type, name) {
  const candidates = template.ofType(type)
  const segments = name.split(/[-/]/)
  const bySegment = candidates.find((id) => segments.includes(id))
  if (bySegment) return bySegment
  const byName = candidates.find((id) => template.physical(id).name === name)
  if (byName) return byName
  // The declared name below a test stack's unique prefix (the deployment suite's secret).
  const byDeclaredName = candidates.find((id) => name.endsWith(`/${template.physical(id).name}`))
  if (byDeclaredName) return byDeclaredName
  const byPrefix = (STAND_PREFIXES[type] ?? []).find(([prefix]) => name.startsWith(prefix))
  return byPrefix && candidates.includes(byPrefix[1]) ? byPrefix[1] : undefined
}

// Keys have no names: the tag their create call carried (recorded by the proxy) names them.
const keyTags = new Map()

/** The recorded call's resource as the template's: { logicalId, arn } or a reason. */
function canonical(call) {
  if (call.service === 'execute-api') return executeApiResource(call)
  const arn = call.resource
  if (!arn) return { error: `${call.operation} names no resource` }
  const [, , service, , , ...rest] = arn.split(':')
  const tail = rest.join(':')
  switch (service) {
    case 'dynamodb': {
      const m = tail.match(/^table\/([^/]+)(\/index\/.+)?$/)
      const id = m && logicalFor('AWS::DynamoDB::Table', m[1])
      return id ? { logicalId: id, arn: template.getAtt(id, 'Arn') + (m[2] ?? '') } : { error: `table ${tail}` }
    }
    case 'sqs': {
      const id = logicalFor('AWS::SQS::Queue', tail)
      return id ? { logicalId: id, arn: template.getAtt(id, 'Arn') } : { error: `queue ${tail}` }
    }
    case 'secretsmanager': {
      const name = tail.replace(/^secret:/, '').replace(/-[A-Za-z0-9]{6}$/, '')
      const id = logicalFor('AWS::SecretsManager::Secret', name)
      return id ? { logicalId: id, arn: template.ref(id) } : { error: `secret ${name}` }
    }
    case 'kms': {
      const tags = keyTags.get(arn) ?? {}
      const id = tags['hsbridge:logical-id'] ?? tags['aws:cloudformation:logical-id']
      return id && template.ofType('AWS::KMS::Key').includes(id)
        ? { logicalId: id, arn: template.getAtt(id, 'Arn') }
        : { error: `key ${arn} (created without a hsbridge:logical-id tag)` }
    }
    default:
      return { error: `service ${service}` }
  }
}

/** The protected API's stage ARN in the template (the demo API's, or ProtectedApiStageArn). */
function stageArn() {
  if (template.condition('UseDemoApi')) {
    return `arn:aws:execute-api:${REGION}:${ACCOUNT}:${template.ref('DemoProtectedApi')}/demo`
  }
  return template.parameters.ProtectedApiStageArn
}

/** `METHOD /STAGE/REST` as API Gateway's ARN: the stage's, then `/METHOD/REST`. */
function executeApiResource(call) {
  const m = call.path.match(/^\/[^/]+(\/.*)?$/)
  if (!m) return { error: `path ${call.path} has no stage` }
  return { logicalId: 'ProtectedApi', arn: `${stageArn()}/${call.method}${m[1] ?? '/'}` }
}

/** The resource policy IAM evaluates with the call, where the template declares one. */
function resourcePolicyFor(logicalId, service) {
  if (service === 'kms') return template.resolve(template.resources[logicalId].Properties.KeyPolicy)
  if (service === 'execute-api' && template.condition('UseDemoApi')) {
    const api = template.ref('DemoProtectedApi')
    const policy = template.resolve(template.resources.DemoProtectedApi.Properties.Body['x-amazon-apigateway-policy'])
    // API Gateway expands `execute-api:/…` to the API's own ARN.
    return JSON.parse(
      JSON.stringify(policy).replaceAll('"execute-api:/', `"arn:aws:execute-api:${REGION}:${ACCOUNT}:${api}/`)
    )
  }
  return undefined
}

// ------------------------------------------------------------------ KMS through the services

// Where DynamoDB, SQS or Secrets Manager use a customer managed key, IAM evaluates the KMS call
// the service makes for the caller with kms:ViaService set to the service; moto makes no such
// call, so it is modelled from each resource's encryption settings in the template and the
// services' documentation:
//   DynamoDB: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html
//     (a read or write of a table under a customer managed key: kms:Decrypt of the table key,
//     encryption context aws:dynamodb:tableName, aws:dynamodb:subscriberId);
//   SQS: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
//     (a producer needs kms:GenerateDataKey and kms:Decrypt, a consumer kms:Decrypt; context aws:sqs:arn);
//   Secrets Manager: https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
//     (GetSecretValue: kms:Decrypt, context SecretARN and SecretVersionId).
function keyOf(logicalId) {
  const r = template.resources[logicalId]
  if (r === undefined) return undefined
  const p = r.Properties ?? {}
  const id =
    r.Type === 'AWS::DynamoDB::Table'
      ? p.SSESpecification?.SSEEnabled && p.SSESpecification.KMSMasterKeyId
      : r.Type === 'AWS::SQS::Queue'
        ? p.KmsMasterKeyId
        : r.Type === 'AWS::SecretsManager::Secret'
          ? p.KmsKeyId
          : undefined
  if (!id) return undefined
  const value = template.resolve(id)
  return template.ofType('AWS::KMS::Key').find((k) => template.ref(k) === value || template.getAtt(k, 'Arn') === value)
}

function viaService(call, resource) {
  const key = keyOf(resource.logicalId)
  if (!key) return []
  const action = call.action
  const service = action.split(':')[0]
  let actions = []
  let context = {}
  if (service === 'dynamodb') {
    actions = ['kms:Decrypt']
    context = { 'aws:dynamodb:tableName': template.physical(resource.logicalId).name, 'aws:dynamodb:subscriberId': ACCOUNT }
  } else if (service === 'sqs') {
    if (action === 'sqs:SendMessage') actions = ['kms:GenerateDataKey', 'kms:Decrypt']
    if (action === 'sqs:ReceiveMessage') actions = ['kms:Decrypt']
    context = { 'aws:sqs:arn': resource.arn }
  } else if (service === 'secretsmanager') {
    if (action === 'secretsmanager:GetSecretValue') actions = ['kms:Decrypt']
    context = { SecretARN: resource.arn, SecretVersionId: 'modelled' }
  }
  return actions.map((kmsAction) => ({
    caller: call.caller,
    action: kmsAction,
    key,
    via: `${service}.${REGION}.amazonaws.com`,
    context,
    because: `${action} on ${resource.logicalId}`
  }))
}

// ------------------------------------------------------------------ evaluation

function contextFor(who, encryptionContext = {}, via, extra = {}) {
  const context = {
    'aws:PrincipalArn': who.principalArn,
    'aws:PrincipalAccount': ACCOUNT,
    'aws:SecureTransport': 'true',
    'aws:RequestedRegion': REGION,
    ...extra
  }
  const keys = Object.keys(encryptionContext)
  for (const [k, v] of Object.entries(encryptionContext)) context[`kms:EncryptionContext:${k}`] = v
  if (via !== undefined || keys.length > 0) context['kms:EncryptionContextKeys'] = keys
  if (via !== undefined) {
    context['kms:ViaService'] = via
    context['kms:CallerAccount'] = ACCOUNT
  }
  return context
}

const used = new Map() // "<role>/<policy>/<sid>/<action>" -> count
async function evaluate(who, action, resource, context, resourcePolicy) {
  const decision = await decide({
    principal: who.arn,
    action,
    resource: resource.arn,
    account: ACCOUNT,
    context,
    identityPolicies: who.policies,
    resourcePolicy
  })
  if (decision.result === 'Allowed') {
    for (const s of decision.allowedBy) {
      const statement = who.policies
        .find((p) => p.name === s.policy)
        ?.policy.Statement.find((st) => st.Sid === s.sid)
      for (const pattern of [statement?.Action ?? []].flat()) {
        if (matches(pattern, action)) {
          const k = `${who.id}/${s.policy}/${s.sid}/${pattern}`
          used.set(k, (used.get(k) ?? 0) + 1)
        }
      }
    }
  }
  return decision.result
}

function matches(pattern, value) {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.?+^$()[\]{}|\\]/g, '\\$&')).join('.*')}$`, 'i')
  return re.test(value)
}

// ------------------------------------------------------------------ the recorded calls

const lines = fs.readFileSync(logPath, 'utf8').split('\n').filter((l) => l.trim() !== '')
const calls = lines.map((l, i) => {
  try {
    return JSON.parse(l)
  } catch {
    fail(`${logPath}:${i + 1}: not a JSON line`)
    return undefined
  }
}).filter(Boolean)
for (const c of calls) {
  if (c.service === 'kms' && c.operation === 'CreateKey' && c.resource && c.tags) keyTags.set(c.resource, c.tags)
}

const byRole = new Map(roles.map((r) => [r, principal(r)]))
const distinct = new Map()
const modelled = new Map()
let stand = 0
for (const call of calls) {
  const who = byRole.get(call.caller)
  if (!who) {
    if (/Role$/.test(call.caller) && !call.caller.startsWith('AKID')) {
      fail(`a call signed as ${call.caller}, which is no role of the template (${call.action})`)
    }
    stand += 1
    continue
  }
  const resource = canonical(call)
  if (resource.error) {
    fail(`${call.caller} ${call.action}: cannot tell which template resource this is: ${resource.error}`)
    continue
  }
  // DynamoDB gives a BatchWriteItem's partition keys to IAM as dynamodb:LeadingKeys.
  const leading = call.leadingKeys ? { 'dynamodb:LeadingKeys': call.leadingKeys } : {}
  const context = contextFor(who, call.encryptionContext, undefined, leading)
  const key = JSON.stringify([who.id, call.action, resource.arn, context])
  if (!distinct.has(key)) distinct.set(key, { who, action: call.action, resource, context, service: call.service, count: 0 })
  distinct.get(key).count += 1
  for (const m of viaService(call, resource)) {
    const k = JSON.stringify([m.caller, m.action, m.key, m.context, m.via])
    if (!modelled.has(k)) modelled.set(k, m)
  }
}

// Lambda's SQS poller (the event source mapping) receives, deletes and reads the queue's
// attributes with the function's execution role; no test process plays it, so its calls are
// modelled from each AWS::Lambda::EventSourceMapping of the template:
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
let pollerCalls = 0
for (const id of template.ofType('AWS::Lambda::EventSourceMapping')) {
  const props = template.resources[id].Properties
  const source = template.resolve(props.EventSourceArn)
  const queue = template.ofType('AWS::SQS::Queue').find((q) => template.getAtt(q, 'Arn') === source)
  const fn = props.FunctionName?.Ref
  const roleArnOfFn = fn && template.resolve(template.resources[fn].Properties.Role)
  const role = roles.find((r) => template.getAtt(r, 'Arn') === roleArnOfFn)
  const who = byRole.get(role)
  if (!queue || !who) {
    fail(`event source mapping ${id}: cannot tell its queue or its function's role`)
    continue
  }
  const resource = { logicalId: queue, arn: source }
  for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']) {
    const context = contextFor(who)
    distinct.set(JSON.stringify([who.id, action, source, context, 'poller']), { who, action, resource, context, service: 'sqs', count: 1 })
    pollerCalls += 1
    for (const m of viaService({ caller: who.id, action }, resource)) {
      modelled.set(JSON.stringify([m.caller, m.action, m.key, m.context, m.via]), m)
    }
  }
}

const triples = new Set()
let evaluated = 0
for (const d of distinct.values()) {
  triples.add(`${d.who.id} ${d.action} ${d.resource.arn}`)
  const result = await evaluate(d.who, d.action, d.resource, d.context, resourcePolicyFor(d.resource.logicalId, d.service))
  evaluated += 1
  if (result !== 'Allowed') fail(`recorded call denied (${result}): ${d.who.id} ${d.action} on ${d.resource.arn} ${JSON.stringify(d.context)}`)
}
let modelledCount = 0
for (const m of modelled.values()) {
  const who = byRole.get(m.caller)
  const resource = { logicalId: m.key, arn: template.getAtt(m.key, 'Arn') }
  const result = await evaluate(who, m.action, resource, contextFor(who, m.context, m.via), resourcePolicyFor(m.key, 'kms'))
  modelledCount += 1
  if (result !== 'Allowed') fail(`${m.via} on ${who.id}'s behalf denied (${result}): ${m.action} on ${m.key} (for ${m.because})`)
}

for (const r of roles) {
  if (![...distinct.values()].some((d) => d.who.id === r)) fail(`no recorded call of ${r}: is its SDK configuration signing as ${r}?`)
}
for (const r of ['ApiCallerRole', 'HubSpotRelayRole']) {
  if (![...distinct.values()].some((d) => d.who.id === r && d.service === 'execute-api')) {
    fail(`no recorded execute-api:Invoke of ${r} (the SigV4 stand-in writes them when HSBRIDGE_AWS_CALL_LOG is set)`)
  }
}

// ------------------------------------------------------------------ probes

const arnOf = (id) =>
  template.resources[id].Type === 'AWS::SecretsManager::Secret' ? template.ref(id) : template.getAtt(id, 'Arn')
const api = (method, p) => ({ logicalId: 'ProtectedApi', arn: `${stageArn()}/${method}${p}` })
const res = (id) => ({ logicalId: id, arn: arnOf(id) })
const hub = { hub_id: '62515' }
const callerUser = users.find((u) => u === 'HubSpotCallerUser')
const PROBES = [
  ['WebhookIntakeRole', 'kms:Decrypt', res('TokenKey'), hub, 'deny', 'the intake cannot decrypt under the token key'],
  ['WebhookIntakeRole', 'kms:GenerateDataKey', res('TokenKey'), hub, 'deny', 'nor seal tokens'],
  ['HubSpotRelayRole', 'dynamodb:GetItem', res('AccountsTable'), {}, 'deny', 'the relay cannot read the accounts table'],
  ['HubSpotRelayRole', 'dynamodb:Scan', res('AccountsTable'), {}, 'deny', 'nor scan it'],
  ['HubSpotRelayRole', 'kms:Decrypt', res('TokenKey'), hub, 'deny', 'nor open a token'],
  ['OAuthCallbackRole', 'sqs:SendMessage', res('EventsQueue'), {}, 'deny', 'the callback cannot send to the queue'],
  ['ApiCallerRole', 'sqs:SendMessage', res('EventsQueue'), {}, 'deny', 'the api-caller consumes the queue, never feeds it'],
  ['ApiCallerRole', 'kms:Decrypt', res('TokenKey'), {}, 'deny', 'the token key refuses a call without the hub_id context'],
  ['ApiCallerRole', 'kms:Decrypt', res('TokenKey'), { hub_id: '1', extra: 'x' }, 'deny', 'and one with another context key'],
  ['ApiCallerRole', 'kms:Decrypt', res('DataKey'), {}, 'deny', 'the data key only through its services'],
  ['HubSpotRelayRole', 'execute-api:Invoke', api('GET', '/contacts/123'), {}, 'deny', 'a path outside RelayTargetPrefix (what RelayUrl/contacts/123 would reach if the relay forwarded PATH as is)'],
  ['HubSpotRelayRole', 'execute-api:Invoke', api('POST', '/hubspot/events'), {}, 'deny', 'the relay cannot post to the events route'],
  ['HubSpotRelayRole', 'execute-api:Invoke', api('GET', '/x/hubspot/relay/y'), {}, 'deny', 'nor reach a path that merely contains the prefix'],
  ['HubSpotRelayRole', 'execute-api:Invoke', api('GET', '/hubspot/relay/contacts/123'), {}, 'allow', 'RelayUrl/contacts/123 as the relay forwards it'],
  ['ApiCallerRole', 'execute-api:Invoke', api('GET', '/hubspot/relay/x'), {}, 'deny', 'the api-caller posts events only'],
  ['ApiCallerRole', 'dynamodb:BatchWriteItem', res('DedupeTable'), {}, 'allow', 'the api-caller writes delivery records', { 'dynamodb:LeadingKeys': ['delivery#62515#1#2#3'] }],
  ['ApiCallerRole', 'dynamodb:BatchWriteItem', res('DedupeTable'), {}, 'deny', 'but never a dedupe record beside them', { 'dynamodb:LeadingKeys': ['delivery#62515#1#2#3', '62515#1#2#3'] }],
  ['ApiCallerRole', 'dynamodb:BatchWriteItem', res('DedupeTable'), {}, 'deny', 'nor a write whose keys IAM is not told', {}],
  ['ApiCallerRole', 'dynamodb:PutItem', res('DedupeTable'), {}, 'deny', 'nor any other write to the dedupe table', { 'dynamodb:LeadingKeys': ['delivery#62515#1#2#3'] }],
  ...(callerUser
    ? [
        [callerUser, 'execute-api:Invoke', api('POST', '/hubspot/context'), {}, 'allow', 'the caller user invokes its one route'],
        [callerUser, 'execute-api:Invoke', api('GET', '/hubspot/context'), {}, 'deny', 'with POST only'],
        [callerUser, 'execute-api:Invoke', api('POST', '/hubspot/events'), {}, 'deny', 'not the events route'],
        [callerUser, 'execute-api:Invoke', api('POST', '/hubspot/relay/x'), {}, 'deny', 'not the relay’s routes'],
        [callerUser, 'execute-api:Invoke', { logicalId: 'Other', arn: `arn:aws:execute-api:${REGION}:${ACCOUNT}:otherapi/prod/POST/hubspot/context` }, {}, 'deny', 'not another API'],
        [callerUser, 'sqs:SendMessage', res('EventsQueue'), {}, 'deny', 'no other service'],
        [callerUser, 'dynamodb:GetItem', res('AccountsTable'), {}, 'deny', 'no other service'],
        [callerUser, 'secretsmanager:GetSecretValue', res('HubSpotAppSecret'), {}, 'deny', 'no other service'],
        [callerUser, 'kms:Decrypt', res('TokenKey'), hub, 'deny', 'no other service']
      ]
    : [])
]
const probeLines = []
for (const [id, action, resource, ctx, expect, why, extra] of PROBES) {
  const who = roles.includes(id) ? byRole.get(id) : principal(id)
  const service = action.split(':')[0]
  const before = new Map(used)
  const result = await evaluate(who, action, resource, contextFor(who, ctx, undefined, extra), resourcePolicyFor(resource.logicalId, service))
  // A probe is no evidence that a grant is used.
  used.clear()
  for (const [k, v] of before) used.set(k, v)
  const ok = expect === 'allow' ? result === 'Allowed' : result !== 'Allowed'
  probeLines.push(`${ok ? 'ok  ' : 'FAIL'} ${expect.padEnd(5)} ${id} ${action} ${resource.arn}: ${result} (${why})`)
  if (!ok) fail(`probe: ${id} ${action} on ${resource.arn} must be ${expect === 'allow' ? 'allowed' : 'denied'}, was ${result} (${why})`)
}

// ------------------------------------------------------------------ every grant used or kept

const unused = []
const kept = []
for (const r of roles) {
  for (const p of byRole.get(r).policies) {
    for (const st of p.policy.Statement) {
      if (st.Effect !== 'Allow') continue
      for (const pattern of [st.Action].flat()) {
        const k = `${r}/${p.name}/${st.Sid}/${pattern}`
        if (used.has(k)) continue
        const reason = KEPT_FOR_ONE_ROLE[`${r}/${st.Sid}/${pattern}`] ?? KEPT_FOR_EVERY_ROLE[`${st.Sid}/${pattern}`]
        if (reason) kept.push(`${r} ${p.name}/${st.Sid} ${pattern}: ${reason}`)
        else unused.push(`${r} ${p.name}/${st.Sid} ${pattern}`)
      }
    }
  }
}
for (const u of unused) fail(`grant used by no recorded or modelled call, and not listed with a reason: ${u}`)

// ------------------------------------------------------------------ report

const summary = {
  recordedLines: calls.length,
  standCalls: stand,
  distinctRoleActionResource: triples.size,
  distinctEvaluated: evaluated,
  modelledViaService: modelledCount,
  modelledPollerCalls: pollerCalls,
  probes: PROBES.length,
  grantsUsed: [...used.keys()].sort(),
  grantsKept: kept,
  failures
}
if (reportPath) fs.writeFileSync(reportPath, JSON.stringify(summary, null, 2))
console.log(`IAM: ${calls.length} recorded calls (${stand} by the test stand itself, not evaluated)`)
console.log(`IAM: ${triples.size} distinct (role, action, resource) calls (${pollerCalls} of them Lambda's SQS poller, modelled); ${evaluated} distinct with their context evaluated; ${modelledCount} KMS calls through DynamoDB/SQS/Secrets Manager modelled and evaluated`)
for (const t of [...triples].sort()) console.log(`  ${t}`)
console.log(`IAM: ${PROBES.length} probes`)
for (const l of probeLines) console.log(`  ${l}`)
console.log(`IAM: grants kept without a call (${kept.length}):`)
for (const k of kept) console.log(`  ${k}`)
if (failures.length > 0) {
  console.log(`IAM: ${failures.length} failures:`)
  for (const f of failures) console.log(`  ${f}`)
  process.exit(1)
}
console.log('IAM: every recorded call allowed, every probe as expected, every grant used or kept with its reason')
