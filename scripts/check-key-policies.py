#!/usr/bin/env python3
"""Checks every KMS key policy in a CloudFormation template against the confused deputy.

A key-policy statement that allows an AWS service principal lets that service use the key on
behalf of whoever can make it act. Each such Allow must therefore be scoped to this stack's own
resources: an `aws:SourceAccount` condition naming `${AWS::AccountId}` and an `aws:SourceArn`
condition naming an ARN in `${AWS::AccountId}` (or, for a service that does not send those keys
to KMS, the documented equivalent listed in DOCUMENTED_EQUIVALENTS).

Usage: check-key-policies.py [TEMPLATE]   (default: template.yaml). Exit status 1 names every
statement that falls short.
"""

import sys

from cfn_template import load

# Services whose KMS requests carry a documented context key that names the source resource
# (account included) instead of aws:SourceArn / aws:SourceAccount.
DOCUMENTED_EQUIVALENTS = {
    # CloudWatch Logs passes the log group's ARN as encryption context:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
    "logs": ("kms:EncryptionContext:aws:logs:arn",),
}
SOURCE_KEYS = ("aws:SourceAccount", "aws:SourceArn")
ACCOUNT = "${AWS::AccountId}"


def text(value):
    """The literal text of a value or of a `Fn::Sub` template, else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else text(sub[0])
    return None


def service_names(principal):
    """The service principals of a statement, `logs.${AWS::Region}.amazonaws.com` -> `logs`."""
    if not isinstance(principal, dict) or "Service" not in principal:
        return []
    services = principal["Service"]
    services = services if isinstance(services, list) else [services]
    return [(text(s) or "?").split(".")[0] for s in services]


def condition_values(condition):
    """{context key: [values]} over every operator of a Condition block."""
    found = {}
    for operator in (condition or {}).values():
        for key, values in (operator or {}).items():
            values = values if isinstance(values, list) else [values]
            found.setdefault(key, []).extend(values)
    return found


def names_this_account(values, arn):
    for value in values:
        if not arn and value == {"Ref": "AWS::AccountId"}:
            return True
        t = text(value)
        if t is None:
            continue
        if arn and t.startswith("arn:") and f":{ACCOUNT}:" in t:
            return True
        if not arn and t == ACCOUNT:
            return True
    return False


def problems(template):
    out = []
    for name, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::KMS::Key":
            continue
        policy = (resource.get("Properties") or {}).get("KeyPolicy") or {}
        for index, statement in enumerate(policy.get("Statement") or []):
            if statement.get("Effect") != "Allow":
                continue
            label = f"{name} statement {statement.get('Sid', index)}"
            conditions = condition_values(statement.get("Condition"))
            for service in service_names(statement.get("Principal")):
                equivalents = DOCUMENTED_EQUIVALENTS.get(service, ())
                if any(names_this_account(conditions.get(k, []), arn=True) for k in equivalents):
                    continue
                account = names_this_account(conditions.get("aws:SourceAccount", []), arn=False)
                source = names_this_account(conditions.get("aws:SourceArn", []), arn=True)
                if not account:
                    out.append(f"{label}: service {service} has no aws:SourceAccount = {ACCOUNT}")
                if not source:
                    out.append(
                        f"{label}: service {service} has no aws:SourceArn in {ACCOUNT}"
                    )
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    template = load(path)
    found = problems(template)
    for p in found:
        print(f"{path}: {p}", file=sys.stderr)
    if found:
        print(
            f"{path}: {len(found)} key-policy statement(s) let a service use a key for anyone "
            f"(scope them with {' and '.join(SOURCE_KEYS)})",
            file=sys.stderr,
        )
        return 1
    print(f"{path}: every service principal in a key policy is scoped to this account")
    return 0


if __name__ == "__main__":
    sys.exit(main())
