// One IAM decision, by @cloud-copilot/iam-simulate (IAM's documented evaluation logic:
// identity policies, the resource policy, KMS's key-policy rule that a key policy must allow
// the principal or delegate to the account).
//
// Every request goes through `runSimulation` first, which validates the policies, the action,
// the resource ARN's type and the context keys. One gap of the version pinned here: a context key
// of the `kms:EncryptionContext:<key>` form is reported as ignored (its variable-key match knows
// only `/`-separated variables such as `aws:PrincipalTag/x`), so the decision would be taken as if
// the request carried no encryption context. Where that is the only key ignored, the decision is
// taken by the library's own engine (`authorize`, what `runSimulation` calls after validation) on
// the full context; any other ignored key fails the evaluation.

import { loadPolicy } from '@cloud-copilot/iam-policy'
import { runSimulation } from '@cloud-copilot/iam-simulate'
import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

// The engine's modules are not in the package's exports map: loaded by path, from the pinned
// version (tests/iam/package-lock.json).
const require = createRequire(import.meta.url)
const root = path.join(path.dirname(require.resolve('@cloud-copilot/iam-simulate')), '..', 'esm')
const load = (file) => import(pathToFileURL(path.join(root, file)).href)
const { authorize } = await load('core_engine/CoreSimulatorEngine.js')
const { AwsRequestImpl } = await load('request/request.js')
const { RequestContextImpl } = await load('requestContext.js')
const { DiscoveryContextKeyConstraints } = await load('context_keys/discoveryContextKeyConstraints.js')

const ENCRYPTION_CONTEXT = /^kms:encryptioncontext:/i

/**
 * @param {{principal: string, action: string, resource: string, account: string,
 *   context: Record<string, string|string[]>, identityPolicies: {name: string, policy: object}[],
 *   resourcePolicy?: object}} request
 * @returns {Promise<{result: string, allowedBy: {policy: string, sid: string}[]}>}
 */
export async function decide(request) {
  const simulation = {
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.account },
      contextVariables: request.context
    },
    identityPolicies: request.identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: request.resourcePolicy
  }
  const checked = await runSimulation(simulation, {})
  if (checked.resultType === 'error') {
    throw new Error(`iam-simulate refused the request: ${JSON.stringify(checked.errors)}`)
  }
  if (checked.resultType !== 'single') {
    throw new Error(`iam-simulate: expected one resource, got ${checked.resultType}`)
  }
  const ignored = checked.result.ignoredContextKeys ?? []
  const unexpected = ignored.filter((k) => !ENCRYPTION_CONTEXT.test(k))
  if (unexpected.length > 0) {
    throw new Error(`context keys not valid for ${request.action}: ${unexpected.join(', ')}`)
  }
  let analysis = checked.result.analysis
  if (ignored.length > 0) {
    const aws = new AwsRequestImpl(
      request.principal,
      { resource: request.resource, accountId: request.account },
      request.action,
      new RequestContextImpl(request.context)
    )
    analysis = authorize({
      request: aws,
      sessionPolicy: undefined,
      identityPolicies: request.identityPolicies.map((p) => loadPolicy(p.policy, { name: p.name })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: request.resourcePolicy
        ? loadPolicy(request.resourcePolicy, { name: 'resource policy' })
        : undefined,
      permissionBoundaries: undefined,
      vpcEndpointPolicies: undefined,
      simulationParameters: {
        simulationMode: 'Strict',
        discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([])
      },
      serviceSettings: { s3: {} }
    })
  }
  const allowedBy = (analysis.identityAnalysis?.allowStatements ?? []).map((s) => ({
    policy: s.policyId,
    sid: s.explain?.identifier ?? s.statement?.Sid
  }))
  return { result: analysis.result, allowedBy }
}
