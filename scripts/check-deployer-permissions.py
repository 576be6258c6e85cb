"""The IAM permissions a deployer needs, held to the template.

Translates template.yaml offline with aws-sam-translator (as cfn-lint and `sam deploy` do), takes
every resource type of the result, and reads from CloudFormation's own resource schemas (the
registry schemas cfn-lint bundles) the calls CloudFormation makes to create, read, update and
delete each type. Adds the calls `sam deploy` and `sam delete` make themselves (change sets, the
SAM transform, the managed artifact bucket and its stack) and those of the operator commands the
guide uses. Then checks infra/deployer-policy.json, the policy infra/README.md documents:

- every needed action is allowed by one of its statements (IAM action wildcards honoured);
- it allows nothing that is not needed (no stale or surplus action);
- the check itself catches a policy with one needed action removed.

Resources and conditions of the policy are not evaluated here: that is an IAM evaluator's job.

Run by scripts/check-infra; exit status 1 on any finding.
"""

import copy
import fnmatch
import json
import os
import sys

import cfnlint

sys.path.insert(0, os.path.dirname(__file__))
from sam_translate import translate  # noqa: E402

POLICY = "infra/deployer-policy.json"

# What sam deploy / sam delete call themselves (samcli/lib/deploy/deployer.py,
# samcli/lib/delete/cfn_utils.py, samcli/lib/utils/managed_cloudformation_stack.py,
# samcli/lib/package/s3_uploader.py in aws-sam-cli 1.170.0), and the SAM transform, which
# CloudFormation runs with the deployer's own permissions.
SAM_CLI_CALLS = {
    "cloudformation:CreateChangeSet",
    "cloudformation:DescribeChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:ListChangeSets",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStackResources",
    "cloudformation:GetTemplate",
    "cloudformation:GetTemplateSummary",
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:RollbackStack",
    "cloudformation:DeleteStack",
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:DeleteObject",
}
# The managed stack `resolve_s3 = true` creates once per account and region
# (samcli/lib/bootstrap/bootstrap.py): an S3 bucket and its policy.
MANAGED_STACK_TYPES = ["AWS::S3::Bucket", "AWS::S3::BucketPolicy"]
# The operator commands of the guide: hsbridge secret set / rotate (Secrets Manager, the stack's
# outputs), teardown check (the stack's resources and their state), accounts list / show /
# disconnect (the accounts table, the token key, the app secret).
OPERATOR_CALLS = {
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackResources",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "dynamodb:DescribeTable",
    "dynamodb:Scan",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "kms:DescribeKey",
    "kms:Decrypt",
    "iam:ListAccessKeys",
}


def translated_types(path):
    """The resource types of the template after the SAM transform (every condition's resources)."""
    return sorted({r["Type"] for r in translate(path)["Resources"].values()})


def handler_permissions(types):
    """{action: [types]} from CloudFormation's resource schemas (create, read, update, delete)."""
    schemas = os.path.join(os.path.dirname(cfnlint.__file__), "data", "schemas")
    with open(os.path.join(schemas, "providers", "us-east-1.json"), encoding="utf-8") as f:
        index = json.load(f)
    needed = {}
    for type_name in types:
        with open(os.path.join(schemas, "resources", f"{index[type_name]}.json"), encoding="utf-8") as f:
            handlers = json.load(f).get("handlers", {})
        for handler in ("create", "read", "update", "delete"):
            for action in handlers.get(handler, {}).get("permissions", []):
                needed.setdefault(action, set()).add(type_name)
    return needed


def allowed_actions(policy):
    actions = []
    for statement in policy["Statement"]:
        if statement.get("Effect") != "Allow":
            continue
        listed = statement["Action"]
        actions.extend([listed] if isinstance(listed, str) else listed)
    return actions


def allows(patterns, action):
    """IAM action matching: case-insensitive, `*` and `?` wildcards."""
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def findings(policy, needed):
    patterns = allowed_actions(policy)
    out = []
    for action in sorted(needed, key=str.lower):
        if not allows(patterns, action):
            out.append(f"missing: {action} (needed for {', '.join(sorted(needed[action]))})")
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(a.lower(), pattern.lower()) for a in needed):
            out.append(f"not needed: {pattern} (no resource type or command calls it)")
    return out


def main():
    template = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    types = translated_types(template)
    needed = handler_permissions(types + MANAGED_STACK_TYPES)
    for action in SAM_CLI_CALLS:
        needed.setdefault(action, set()).add("sam deploy / sam delete")
    for action in OPERATOR_CALLS:
        needed.setdefault(action, set()).add("hsbridge operator commands")
    needed.setdefault("cloudformation:CreateChangeSet", set()).add("AWS::Serverless transform")

    with open(POLICY, encoding="utf-8") as f:
        policy = json.load(f)
    problems = findings(policy, needed)

    # The check must catch a policy without one needed action.
    probe = copy.deepcopy(policy)
    for statement in probe["Statement"]:
        listed = statement["Action"]
        statement["Action"] = [a for a in ([listed] if isinstance(listed, str) else listed) if a.lower() != "kms:createkey"]
    if not any(p.startswith("missing: kms:CreateKey") for p in findings(probe, needed)):
        problems.append("self-test: a policy without kms:CreateKey was not refused")

    if problems:
        print(f"{POLICY} does not match what deploying {template} needs:")
        for problem in problems:
            print(f"  {problem}")
        sys.exit(1)
    print(
        f"{POLICY}: covers the {len(needed)} actions of {len(types)} resource types "
        f"(after the SAM transform), sam deploy/delete and the operator commands, and nothing more"
    )


if __name__ == "__main__":
    main()
