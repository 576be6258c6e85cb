"""samconfig.toml's environments against template.yaml's Rules and first-deploy defaults.

For each environment, the parameter values a deploy would use (the template's defaults, then the
environment's parameter_overrides, parsed as SAM CLI does: shell words of KEY=VALUE) are run
through the template's Rules, which CloudFormation evaluates before it creates anything:

- an environment without ProtectedApiUrl deploys only if it says AllowDemoApi=true; `prod` says
  no such thing, so it is refused until it names its API, and accepted once it does;
- `default` deploys as it stands, and every environment deploys into a new account: no reserved
  concurrency (Lambda keeps 100 executions unreserved, and a new account's limit may be 10);
  `default` has no table deletion protection (it would block the rollback of a failed create).

Run by scripts/check-infra; exit status 1 on any finding.
"""

import os
import shlex
import sys
import tomllib

sys.path.insert(0, os.path.dirname(__file__))
from cfn_template import load  # noqa: E402

RESERVED = [
    "IntakeReservedConcurrency",
    "OAuthReservedConcurrency",
    "ApiCallerReservedConcurrency",
    "RelayReservedConcurrency",
]


def overrides(env):
    text = env.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    words = shlex.split(text) if isinstance(text, str) else list(text)
    return dict(word.split("=", 1) for word in words)


def evaluate(value, params):
    """The Rules' condition functions over parameter values (strings)."""
    if isinstance(value, (str, int, float, bool)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    (fn, arg), = value.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Fn::Equals":
        return evaluate(arg[0], params) == evaluate(arg[1], params)
    if fn == "Fn::Not":
        return not evaluate(arg[0], params)
    if fn == "Fn::And":
        return all(evaluate(a, params) for a in arg)
    if fn == "Fn::Or":
        return any(evaluate(a, params) for a in arg)
    raise KeyError(f"cannot evaluate {fn} in a rule")


def refusals(template, params):
    """The AssertDescriptions of every rule these values break."""
    out = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], params):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate(assertion["Assert"], params):
                out.append((name, assertion["AssertDescription"]))
    return out


def main():
    template = load("template.yaml")
    with open("samconfig.toml", "rb") as f:
        config = tomllib.load(f)
    defaults = {n: str(s.get("Default", "")) for n, s in template["Parameters"].items()}
    problems = []
    checked = 0
    for name, env in config.items():
        if not isinstance(env, dict) or "deploy" not in env:
            continue
        checked += 1
        params = {**defaults, **overrides(env)}
        unknown = sorted(set(overrides(env)) - set(defaults))
        if unknown:
            problems.append(f"[{name}] sets parameters the template lacks: {', '.join(unknown)}")
        for p in RESERVED:
            if params[p] != "-1":
                problems.append(f"[{name}] {p}={params[p]}: a new account cannot deploy a reservation")
        # prod turns it on after its first deploy (samconfig.toml says so); the default must not.
        if name == "default" and params["TableDeletionProtection"] != "false":
            problems.append("[default] TableDeletionProtection=true on the first create blocks its rollback")
        broken = refusals(template, params)
        demo = params["ProtectedApiUrl"] == ""
        if demo and params["AllowDemoApi"] != "true":
            if not any(rule == "DemoApiOnlyWhenAllowed" for rule, _ in broken):
                problems.append(f"[{name}] targets the demo API without saying so, and no rule refuses it")
            # Once it names its API, the same environment deploys.
            named = {
                **params,
                "ProtectedApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
                "ProtectedApiStageArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod",
            }
            if refusals(template, named):
                problems.append(f"[{name}] is refused even with ProtectedApiUrl: {refusals(template, named)}")
            if name == "default":
                problems.append("[default] is refused: the first deploy with the guide's defaults must succeed")
            print(f"[{name}] refused until it sets ProtectedApiUrl (rule DemoApiOnlyWhenAllowed), accepted with it")
        elif broken:
            problems.append(f"[{name}] is refused: {broken}")
        else:
            print(f"[{name}] deploys ({'demo API, AllowDemoApi=true' if demo else 'its own protected API'})")
    if name_missing := [n for n in ("default", "prod") if n not in config]:
        problems.append(f"samconfig.toml lacks the environments {name_missing}")
    if problems:
        print("samconfig.toml:")
        for problem in problems:
            print(f"  {problem}")
        sys.exit(1)
    print(f"samconfig.toml: {checked} environments checked against the template's rules")


if __name__ == "__main__":
    main()
