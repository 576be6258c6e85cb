"""Translate a SAM template to plain CloudFormation offline, as cfn-lint does.

Usage: AWS_DEFAULT_REGION=us-east-1 .venv-infra/sam/bin/python tests/src/sam_translate.py \
           template.yaml [--functions]

Prints the translated template as JSON, or with --functions one line per AWS::Lambda::Function:
its logical id, its role and the names of its Environment variables. Needs no network and no AWS
credentials: the region only fills the pseudo parameters (AWS::Region, AWS::Partition), and no
AWS-managed policy name is looked up in IAM (the map of managed policies is empty).
"""

import json
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """A managed-policy loader that asks IAM nothing."""

    def load(self):
        return {}


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: sam_translate.py TEMPLATE [--functions]")
    template, errors = decode(argv[1])
    if errors:
        sys.exit(f"{argv[1]} does not parse: " + "; ".join(str(e) for e in errors))
    template = json.loads(json.dumps(template, default=str))
    # As cfn-lint does: a local CodeUri (what `sam build` packages) becomes a placeholder S3 URI.
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        code = props.get("CodeUri")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(code, str) \
                and not code.startswith("s3://"):
            props["CodeUri"] = "s3://bucket/" + code
    out = transform(template, {}, NoManagedPolicies())
    if "--functions" in argv[2:]:
        for name, resource in out["Resources"].items():
            if resource["Type"] == "AWS::Lambda::Function":
                props = resource["Properties"]
                env = props.get("Environment", {}).get("Variables", {})
                print(name, json.dumps(props.get("Role")), " ".join(sorted(env)))
    else:
        json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)
        print()


if __name__ == "__main__":
    main(sys.argv)
