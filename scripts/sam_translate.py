"""The SAM transform, offline: `template.yaml` as the plain CloudFormation a deploy would create.

As a module: `translate(path, parameters)` (used by check-deployer-permissions.py). As a command:

    .venv-infra/sam/bin/python scripts/sam_translate.py template.yaml [--functions]

prints the translated template as JSON, or with --functions one line per AWS::Lambda::Function:
its logical id, its role and the names of its Environment variables. Needs no network and no AWS
credentials: the pseudo parameters are fixed below, the local CodeUri is replaced by what
`sam deploy` puts there after uploading the build, and no managed policy is looked up in IAM.
"""

import json
import os
import sys

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

sys.path.insert(0, os.path.dirname(__file__))
from cfn_template import load  # noqa: E402

PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "hsbridge",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/hsbridge/1",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}


def translate(path, parameters=None):
    """The template at `path` after the SAM transform (every condition's resources)."""
    template = load(path)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # What `sam deploy` puts there after uploading the build.
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    values = dict(PSEUDO_PARAMETERS)
    values.update(parameters or {})
    session = boto3.session.Session(region_name="us-east-1")
    return Translator({}, Parser(), boto_session=session).translate(template, parameter_values=values)


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: sam_translate.py TEMPLATE [--functions]")
    out = translate(argv[1])
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
