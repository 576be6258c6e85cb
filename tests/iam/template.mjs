// The translated template (scripts/sam_translate.py) with every intrinsic the roles' policies
// and the key policies use resolved, for one set of parameters, under the same fixed pseudo
// parameters the translation uses (us-east-1, account 123456789012, stack hsbridge). A created
// resource is given the physical name CloudFormation's pattern would give it
// (`hsbridge-<LogicalId>-TEST`) and the ARN its type has; an intrinsic or an attribute this
// module does not know fails with its name instead of resolving to something wrong.

export const ACCOUNT = '123456789012'
export const REGION = 'us-east-1'
export const PARTITION = 'aws'
export const STACK = 'hsbridge'
const NO_VALUE = Symbol('AWS::NoValue')

export class Template {
  constructor(translated, parameters = {}) {
    this.t = translated
    this.resources = translated.Resources
    this.parameters = {}
    for (const [name, spec] of Object.entries(translated.Parameters ?? {})) {
      if (spec.Default !== undefined) this.parameters[name] = String(spec.Default)
    }
    Object.assign(this.parameters, parameters)
    this.conditionCache = new Map()
    this.physicalCache = new Map()
  }

  condition(name) {
    if (!this.conditionCache.has(name)) {
      const spec = this.t.Conditions?.[name]
      if (spec === undefined) throw new Error(`unknown condition ${name}`)
      this.conditionCache.set(name, this.truth(spec))
    }
    return this.conditionCache.get(name)
  }

  truth(spec) {
    const [fn, arg] = Object.entries(spec)[0]
    switch (fn) {
      case 'Fn::Equals':
        return String(this.resolve(arg[0])) === String(this.resolve(arg[1]))
      case 'Fn::Not':
        return !this.truth(arg[0])
      case 'Fn::And':
        return arg.every((a) => this.truth(a))
      case 'Fn::Or':
        return arg.some((a) => this.truth(a))
      case 'Condition':
      case 'Fn::Condition':
        return this.condition(arg)
      default:
        throw new Error(`unknown condition function ${fn}`)
    }
  }

  /** Whether the resource exists for these parameters. */
  exists(logicalId) {
    const r = this.resources[logicalId]
    return r !== undefined && (r.Condition === undefined || this.condition(r.Condition))
  }

  ofType(type) {
    return Object.keys(this.resources).filter((id) => this.resources[id].Type === type && this.exists(id))
  }

  ref(name) {
    switch (name) {
      case 'AWS::Region':
        return REGION
      case 'AWS::AccountId':
        return ACCOUNT
      case 'AWS::Partition':
        return PARTITION
      case 'AWS::URLSuffix':
        return 'amazonaws.com'
      case 'AWS::StackName':
        return STACK
      case 'AWS::NoValue':
        return NO_VALUE
    }
    if (name in this.parameters) return this.parameters[name]
    if (name in (this.t.Parameters ?? {})) throw new Error(`parameter ${name} has no value`)
    return this.physical(name).Ref
  }

  getAtt(logicalId, attribute) {
    const value = this.physical(logicalId)[attribute]
    if (value === undefined) {
      throw new Error(`Fn::GetAtt ${logicalId}.${attribute}: attribute not modelled for ${this.resources[logicalId]?.Type}`)
    }
    return value
  }

  /** The physical identity of a created resource: its Ref and the attributes GetAtt may ask for. */
  physical(logicalId) {
    if (this.physicalCache.has(logicalId)) return this.physicalCache.get(logicalId)
    const r = this.resources[logicalId]
    if (r === undefined) throw new Error(`Ref to unknown resource ${logicalId}`)
    const name = `${STACK}-${logicalId}-TEST`
    const props = r.Properties ?? {}
    let p
    switch (r.Type) {
      case 'AWS::DynamoDB::Table': {
        const arn = `arn:${PARTITION}:dynamodb:${REGION}:${ACCOUNT}:table/${name}`
        p = { Ref: name, Arn: arn, StreamArn: `${arn}/stream/TEST`, name }
        break
      }
      case 'AWS::SQS::Queue':
        p = {
          Ref: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`,
          Arn: `arn:${PARTITION}:sqs:${REGION}:${ACCOUNT}:${name}`,
          QueueName: name,
          QueueUrl: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`,
          name
        }
        break
      case 'AWS::KMS::Key':
        p = { Ref: logicalId, KeyId: logicalId, Arn: `arn:${PARTITION}:kms:${REGION}:${ACCOUNT}:key/${logicalId}`, name: logicalId }
        break
      case 'AWS::SecretsManager::Secret': {
        const secretName = props.Name === undefined ? name : this.resolve(props.Name)
        const arn = `arn:${PARTITION}:secretsmanager:${REGION}:${ACCOUNT}:secret:${secretName}-AbCdEf`
        p = { Ref: arn, Id: arn, name: secretName }
        break
      }
      case 'AWS::Logs::LogGroup': {
        const groupName = props.LogGroupName === undefined ? name : this.resolve(props.LogGroupName)
        p = { Ref: groupName, Arn: `arn:${PARTITION}:logs:${REGION}:${ACCOUNT}:log-group:${groupName}:*`, name: groupName }
        break
      }
      case 'AWS::IAM::Role':
        p = { Ref: name, Arn: `arn:${PARTITION}:iam::${ACCOUNT}:role/${name}`, RoleId: `AROA${logicalId}`, name }
        break
      case 'AWS::IAM::User':
      case 'AWS::IAM::Group': {
        const kind = r.Type === 'AWS::IAM::User' ? 'user' : 'group'
        const path = props.Path === undefined ? '/' : this.resolve(props.Path)
        p = { Ref: name, Arn: `arn:${PARTITION}:iam::${ACCOUNT}:${kind}${path}${name}`, name }
        break
      }
      case 'AWS::ApiGateway::RestApi':
      case 'AWS::ApiGatewayV2::Api': {
        const id = logicalId.toLowerCase().slice(0, 10)
        p = { Ref: id, RootResourceId: 'root', ApiEndpoint: `https://${id}.execute-api.${REGION}.amazonaws.com`, name: id }
        break
      }
      case 'AWS::Lambda::Function':
        p = { Ref: name, Arn: `arn:${PARTITION}:lambda:${REGION}:${ACCOUNT}:function:${name}`, name }
        break
      default:
        p = { Ref: logicalId, name: logicalId }
    }
    this.physicalCache.set(logicalId, p)
    return p
  }

  sub(text, variables = {}) {
    return text.replace(/\$\{([^}]+)\}/g, (_, name) => {
      if (name.startsWith('!')) return `\${${name.slice(1)}}`
      if (name in variables) return String(variables[name])
      if (name.includes('.')) {
        const [id, ...attr] = name.split('.')
        return String(this.getAtt(id, attr.join('.')))
      }
      return String(this.ref(name))
    })
  }

  resolve(value) {
    if (value === null || typeof value !== 'object') return value
    if (Array.isArray(value)) return value.map((v) => this.resolve(v)).filter((v) => v !== NO_VALUE)
    const keys = Object.keys(value)
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0].startsWith('Fn::'))) {
      const [fn, arg] = [keys[0], value[keys[0]]]
      switch (fn) {
        case 'Ref':
          return this.ref(arg)
        case 'Fn::GetAtt': {
          const [id, attr] = Array.isArray(arg) ? arg : [arg.slice(0, arg.indexOf('.')), arg.slice(arg.indexOf('.') + 1)]
          return this.getAtt(id, attr)
        }
        case 'Fn::Sub':
          if (typeof arg === 'string') return this.sub(arg)
          return this.sub(
            arg[0],
            Object.fromEntries(Object.entries(arg[1]).map(([k, v]) => [k, this.resolve(v)]))
          )
        case 'Fn::If':
          return this.resolve(this.condition(arg[0]) ? arg[1] : arg[2])
        case 'Fn::Join':
          return this.resolve(arg[1]).join(arg[0])
        case 'Fn::Split':
          return String(this.resolve(arg[1])).split(arg[0])
        case 'Fn::Select':
          return this.resolve(arg[1])[Number(this.resolve(arg[0]))]
        case 'Fn::FindInMap':
          return this.t.Mappings[this.resolve(arg[0])][this.resolve(arg[1])][this.resolve(arg[2])]
        default:
          throw new Error(`intrinsic ${fn} is not resolved by tests/iam/template.mjs`)
      }
    }
    const out = {}
    for (const [k, v] of Object.entries(value)) {
      const r = this.resolve(v)
      if (r !== NO_VALUE) out[k] = r
    }
    return out
  }

  /** The identity policies of a role, user or group: inline ones and the AWS::IAM::Policy resources naming it. */
  policiesOf(logicalId) {
    const r = this.resources[logicalId]
    const props = r.Properties ?? {}
    if ((props.ManagedPolicyArns ?? []).length > 0) {
      throw new Error(`${logicalId} has managed policies, which cannot be read offline`)
    }
    const policies = (props.Policies ?? []).map((p) => ({
      name: `${logicalId}/${this.resolve(p.PolicyName)}`,
      policy: this.resolve(p.PolicyDocument)
    }))
    const field = { 'AWS::IAM::Role': 'Roles', 'AWS::IAM::User': 'Users', 'AWS::IAM::Group': 'Groups' }[r.Type]
    const groups = r.Type === 'AWS::IAM::User' ? (props.Groups ?? []).map((g) => g.Ref).filter(Boolean) : []
    for (const id of this.ofType('AWS::IAM::Policy')) {
      const pp = this.resources[id].Properties
      const names = (pp[field] ?? []).map((x) => x.Ref)
      const viaGroup = (pp.Groups ?? []).some((g) => groups.includes(g.Ref))
      if (names.includes(logicalId) || viaGroup) {
        policies.push({ name: id, policy: this.resolve(pp.PolicyDocument) })
      }
    }
    return policies
  }
}
