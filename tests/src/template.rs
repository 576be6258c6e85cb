//! `template.yaml` as CloudFormation would see it: translated offline by aws-sam-translator
//! (`scripts/sam_translate.py`, run with the SAM tools' Python, `.venv-infra/sam`, which
//! `scripts/check-infra` installs), with the parameter values of a deploy: the template's
//! defaults, then the overrides given (samconfig.toml's `parameter_overrides`, for example).

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The interpreter that runs `scripts/sam_translate.py`: `HSBRIDGE_SAM_PYTHON` (which
/// `scripts/test` exports), else `.venv-infra/sam/bin/python` of the checkout.
pub const SAM_PYTHON_VAR: &str = "HSBRIDGE_SAM_PYTHON";

/// The pseudo parameters of every stack the stand creates, but its name (`sam_translate.py`
/// fixes the same region and account; moto's default account is this one too).
pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";
pub const PARTITION: &str = "aws";
pub const URL_SUFFIX: &str = "amazonaws.com";

/// The repository's root (the tests crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn sam_python() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(SAM_PYTHON_VAR) {
        return Ok(PathBuf::from(p));
    }
    let venv = repo_root().join(".venv-infra/sam/bin/python");
    if venv.exists() {
        return Ok(venv);
    }
    bail!(
        "{SAM_PYTHON_VAR} is not set and {} does not exist: run ./scripts/test (or scripts/check-infra, which installs aws-sam-translator there)",
        venv.display()
    )
}

fn run_script(args: &[&str]) -> Result<Value> {
    let python = sam_python()?;
    let root = repo_root();
    let out = Command::new(&python)
        .arg(root.join("scripts/sam_translate.py"))
        .args(args)
        .current_dir(&root)
        // Offline: no credentials or profile of the caller may matter to the transform.
        .env_remove("AWS_PROFILE")
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "scripts/sam_translate.py {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("sam_translate.py printed no JSON")
}

/// Parameter values by name (strings, as CloudFormation passes them).
pub type Parameters = BTreeMap<String, String>;

/// The translated template of one deploy.
#[derive(Debug, Clone)]
pub struct Translated {
    pub template: Value,
    /// Every parameter's value: the override, else the template's `Default`.
    pub parameters: Parameters,
    /// `AWS::StackName`.
    pub stack_name: String,
}

impl Translated {
    /// The resources, by logical id.
    pub fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.template
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Value> {
        self.template.get("Resources")?.get(logical_id)
    }

    /// The logical ids of the resources of `kind` (`AWS::Lambda::Function`).
    pub fn of_type(&self, kind: &str) -> Vec<String> {
        self.resources()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// `template.yaml` translated for a stack named `stack_name` with `overrides` over the
/// template's defaults. An override the template has no parameter for is an error.
pub fn translate(stack_name: &str, overrides: &Parameters) -> Result<Translated> {
    let mut values = overrides.clone();
    values.insert("AWS::StackName".to_owned(), stack_name.to_owned());
    let json = serde_json::to_string(&values)?;
    let template = run_script(&["template.yaml", "--parameters", &json])?;
    let declared = template
        .get("Parameters")
        .and_then(Value::as_object)
        .context("the translated template has no Parameters")?;
    if let Some(unknown) = overrides.keys().find(|k| !declared.contains_key(*k)) {
        bail!("the parameter {unknown} is not declared in template.yaml");
    }
    let parameters = declared
        .iter()
        .map(|(name, spec)| {
            let value = overrides.get(name).cloned().or_else(|| {
                spec.get("Default").map(|d| match d {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            });
            value
                .map(|v| (name.clone(), v))
                .with_context(|| format!("the parameter {name} has no default and no value"))
        })
        .collect::<Result<Parameters>>()?;
    Ok(Translated {
        template,
        parameters,
        stack_name: stack_name.to_owned(),
    })
}

/// samconfig.toml's environments and their `parameter_overrides`, parsed as SAM CLI does.
pub fn samconfig_overrides() -> Result<BTreeMap<String, Parameters>> {
    let value = run_script(&["--samconfig", "samconfig.toml"])?;
    serde_json::from_value(value).context("samconfig.toml's overrides are not name = value")
}
