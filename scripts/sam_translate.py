"""The SAM transform, offline: `template.yaml` as the plain CloudFormation a deploy would create.

As a module: `translate(path, parameters)` (used by check-deployer-permissions.py). As a command:

    .venv-infra/sam/bin/python scripts/sam_translate.py template.yaml [--functions]
        [--parameters JSON]
    .venv-infra/sam/bin/python scripts/sam_translate.py --samconfig samconfig.toml

prints the translated template as JSON, or with --functions one line per AWS::Lambda::Function:
its logical id, its role and the names of its Environment variables; --parameters gives the
transform parameter values ({"Name": "value"}) over the template's defaults. With --samconfig it
prints each environment's deploy parameter_overrides as JSON ({"env": {"Name": "value"}}),
parsed as SAM CLI does (shell words of KEY=VALUE). Needs no network and no AWS
credentials: the pseudo parameters are fixed below, the local CodeUri is replaced by what
`sam deploy` puts there after uploading the build, and no managed policy is looked up in IAM.
"""

import json
import os
import shlex
import sys
import tomllib

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


def samconfig_overrides(path):
    """Each environment of a samconfig.toml with its deploy parameter_overrides."""
    with open(path, "rb") as f:
        config = tomllib.load(f)
    out = {}
    for name, env in config.items():
        if not isinstance(env, dict) or "deploy" not in env:
            continue
        text = env["deploy"].get("parameters", {}).get("parameter_overrides", "")
        words = shlex.split(text) if isinstance(text, str) else list(text)
        out[name] = dict(word.split("=", 1) for word in words)
    return out


def main(argv):
    if len(argv) == 3 and argv[1] == "--samconfig":
        json.dump(samconfig_overrides(argv[2]), sys.stdout, indent=1, sort_keys=True)
        print()
        return
    if len(argv) < 2:
        sys.exit("usage: sam_translate.py TEMPLATE [--functions] [--parameters JSON] | --samconfig FILE")
    parameters = None
    if "--parameters" in argv[2:]:
        at = argv.index("--parameters")
        if at + 1 >= len(argv):
            sys.exit("--parameters needs a JSON object of parameter values")
        parameters = json.loads(argv[at + 1])
    out = translate(argv[1], parameters)
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
