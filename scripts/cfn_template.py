"""Loading a CloudFormation template for the template checks (check-key-policies.py,
check-invoke-grants.py): YAML with the short-form intrinsic tags kept as their long form
(`!Sub x` -> {"Fn::Sub": x}, `!Ref x` -> {"Ref": x})."""

import yaml


class Loader(yaml.SafeLoader):
    """A safe loader that understands CloudFormation's `!Tag` short forms."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    return {name: value}


Loader.add_multi_constructor("!", _tag)


def load(path):
    """The template at `path` as plain dicts and lists."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)
