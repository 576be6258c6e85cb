#!/usr/bin/env python3
"""Checks what each principal of the template may invoke on the protected API.

Every `execute-api:Invoke` statement is resolved for a deployment on the company's own API
(and for the demo API) and matched, with IAM's wildcard rules, against request ARNs each
principal must and must not reach:

  - the api-caller: `POST ProtectedEventsPath` and nothing else;
  - the relay: the five methods hubspot.fetch sends, below `RelayTargetPrefix/`, and nothing
    else (not the events route, not a path that merely contains the prefix further down);
  - the caller user (the HubSpot project's function): `POST HubSpotFunctionPath` only.

IAM's `*` in a resource ARN matches any run of characters, `/` included, so a grant such as
`STAGE/*/hubspot/relay/*` would also match `STAGE/GET/x/hubspot/relay/y`; the probes below
include such paths.

Usage: check-invoke-grants.py [TEMPLATE]   (default: template.yaml). Exit status 1 names every
grant that is missing or too broad.
"""

import re
import sys

from cfn_template import load

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STAGE = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/prod"
DEMO_STAGE = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:demoapi/demo"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# The principal each policy resource grants to, and the policy's logical id.
POLICIES = {
    "api-caller": "ApiCallerInvokePolicy",
    "relay": "HubSpotRelayInvokePolicy",
    "caller user": "HubSpotCallerInvokePolicy",
}


class Resolver:
    """Resolves the intrinsic functions the grants use, for one set of parameter values."""

    def __init__(self, template, parameters, demo):
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()
        }
        self.parameters.update(parameters)
        self.pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "hsbridge",
        }
        self.conditions = {"UseDemoApi": demo}
        self.resources = {"DemoProtectedApi": "demoapi"}

    def ref(self, name):
        for table in (self.pseudo, self.parameters, self.resources):
            if name in table:
                return table[name]
        raise KeyError(f"cannot resolve Ref {name}")

    def sub(self, text, variables):
        def one(match):
            name = match.group(1)
            return variables[name] if name in variables else self.ref(name)

        return re.sub(r"\$\{([A-Za-z0-9:]+)\}", one, text)

    def __call__(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self(v) for v in value]
        (fn, arg), = value.items()
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::Sub":
            if isinstance(arg, str):
                return self.sub(arg, {})
            return self.sub(arg[0], {k: self(v) for k, v in arg[1].items()})
        if fn == "Fn::If":
            name, then, otherwise = arg
            return self(then if self.conditions[name] else otherwise)
        if fn == "Fn::Split":
            return self(arg[1]).split(arg[0])
        raise KeyError(f"cannot resolve {fn}")


def arn_matches(pattern, arn):
    """IAM resource matching: `*` any run of characters, `?` one character, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def invoke_grants(template, resolve, logical_id):
    statements = template["Resources"][logical_id]["Properties"]["PolicyDocument"]["Statement"]
    grants = []
    for statement in statements:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        if "execute-api:Invoke" not in actions or statement.get("Effect") != "Allow":
            continue
        resources = resolve(statement["Resource"])
        grants.extend([resources] if isinstance(resources, str) else resources)
    return grants


def expectations(stage, events, relay, function):
    """(principal, request ARN, allowed?) for one deployment."""
    rows = [("api-caller", f"{stage}/POST{events}", True)]
    rows += [("relay", f"{stage}/{m}{relay}/x", True) for m in METHODS]
    rows += [("relay", f"{stage}/GET{relay}/a/b/c", True)]
    rows += [("caller user", f"{stage}/POST{function}", True)]
    outside = [
        f"{stage}/POST{events}",
        f"{stage}/GET{events}",
        f"{stage}/POST{events}/x",
        f"{stage}/POST{relay}/x",
        f"{stage}/POST{function}",
        f"{stage}/POST/other",
        f"{stage}/GET/x{relay}/y",
        f"{stage}/OPTIONS{relay}/x",
        f"{stage}/GET{relay}x/y",
        f"{stage}/GET{relay}",
        f"{stage}/POST{events}{relay}/x",
        f"{stage.rsplit('/', 1)[0]}/other-stage/POST{events}",
    ]
    allowed = {(p, arn) for p, arn, ok in rows if ok}
    for principal in POLICIES:
        for arn in outside:
            if (principal, arn) not in allowed:
                rows.append((principal, arn, False))
    return rows


def check(template, parameters, demo, label):
    resolve = Resolver(template, parameters, demo)
    stage = DEMO_STAGE if demo else STAGE
    failures = []
    grants = {p: invoke_grants(template, resolve, lid) for p, lid in POLICIES.items()}
    for principal, patterns in grants.items():
        if not patterns:
            failures.append(f"{label}: {principal} has no execute-api:Invoke grant")
        for pattern in patterns:
            if not pattern.startswith(stage + "/"):
                failures.append(f"{label}: {principal} may invoke {pattern}, outside {stage}")
    rows = expectations(
        stage,
        resolve.ref("ProtectedEventsPath"),
        resolve.ref("RelayTargetPrefix"),
        resolve.ref("HubSpotFunctionPath"),
    )
    for principal, arn, expected in rows:
        got = any(arn_matches(p, arn) for p in grants[principal])
        if got != expected:
            verb = "cannot" if expected else "may"
            failures.append(f"{label}: {principal} {verb} invoke {arn} (grants: {grants[principal]})")
    return failures, len(rows)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    template = load(path)
    own = {"ProtectedApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
           "ProtectedApiStageArn": STAGE}
    runs = [
        (own, False, "own API, defaults"),
        ({**own, "RelayTargetPrefix": "/cards/v1", "ProtectedEventsPath": "/in/events",
          "HubSpotFunctionPath": "/fn/context"}, False, "own API, other paths"),
        ({}, True, "demo API"),
    ]
    failures, probes = [], 0
    for parameters, demo, label in runs:
        f, n = check(template, parameters, demo, label)
        failures += f
        probes += n
    for failure in failures:
        print(failure)
    if failures:
        sys.exit(1)
    print(f"execute-api grants: {probes} probes across {len(runs)} deployments, each as expected")


if __name__ == "__main__":
    main()
