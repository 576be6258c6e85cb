//! The stack as it deploys, started on this machine: `template.yaml` translated with a set of
//! parameter values, its resources created in moto, and each function's binary started under
//! its own Lambda Runtime API emulator with exactly the environment the template gives it plus
//! what Lambda sets.
//!
//! Which binaries: the host test build (`target/debug/<binary>`, built by `cargo build
//! --workspace --bins` as `./scripts/test` does), or, when `HSBRIDGE_SAM_BUILD_DIR` names the
//! output of `sam build` (`.ci/run` sets it), the arm64 `bootstrap` files that ship, run under
//! qemu-user (`HSBRIDGE_QEMU_AARCH64`, else `qemu-aarch64` or `qemu-aarch64-static` on `PATH`)
//! with the arm64 C library of `HSBRIDGE_QEMU_LD_PREFIX` (else Debian's libc6-arm64-cross,
//! `/usr/aarch64-linux-gnu`) as the binaries' root, since they link glibc dynamically.
//!
//! Each function process signs its AWS calls with an access key id naming its role's logical id
//! (`WebhookIntakeRole`, ...), so a proxy in front of moto can tell the callers apart; the AWS
//! endpoint the processes use is [`Deployment::endpoint`], `AWS_ENDPOINT_URL` unless a test
//! gives another.

use anyhow::{Context, Result, bail};
use hsbridge_integration_tests::lambda::{Execution, lambda_env};
use hsbridge_integration_tests::process::Proc;
use hsbridge_integration_tests::runtime_api::RuntimeApi;
use hsbridge_integration_tests::stack::{Function, Stack};
use hsbridge_integration_tests::template::{self, Parameters, REGION};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The secret access key of every function's role in the stand (moto checks none).
pub const ROLE_SECRET_KEY: &str = "testing";
pub const SAM_BUILD_DIR_VAR: &str = "HSBRIDGE_SAM_BUILD_DIR";
pub const QEMU_VAR: &str = "HSBRIDGE_QEMU_AARCH64";
pub const QEMU_LD_PREFIX_VAR: &str = "HSBRIDGE_QEMU_LD_PREFIX";
/// Where Debian's libc6-arm64-cross puts the arm64 dynamic loader and C library.
const DEBIAN_ARM64_ROOT: &str = "/usr/aarch64-linux-gnu";

/// qemu-user and the root it finds the arm64 dynamic loader under (`qemu -L`).
#[derive(Debug, Clone)]
pub struct Qemu {
    pub program: PathBuf,
    pub root: PathBuf,
}

/// The variables each binary reads besides those Lambda sets, from the function crates' own
/// lists (each proved exact by a unit test beside its `from_env`).
pub fn variables_read(binary: &str) -> Option<BTreeSet<&'static str>> {
    let lists: &[&[&str]] = match binary {
        "webhook-intake" => hsbridge_webhook_intake::BINARY_VARIABLES,
        "oauth-callback" => hsbridge_oauth_callback::BINARY_VARIABLES,
        "api-caller" => hsbridge_api_caller::API_CALLER_VARIABLES,
        "hubspot-relay" => hsbridge_api_caller::HUBSPOT_RELAY_VARIABLES,
        _ => return None,
    };
    Some(lists.iter().flat_map(|l| l.iter().copied()).collect())
}

/// The variables the template sets for `function` that its binary never reads.
pub fn unread(function: &Function) -> Result<Vec<String>> {
    let read = variables_read(&function.binary).with_context(|| {
        format!(
            "{} names the binary {}, which this test does not know",
            function.logical_id, function.binary
        )
    })?;
    Ok(function
        .environment
        .keys()
        .filter(|name| !read.contains(name.as_str()))
        .cloned()
        .collect())
}

/// Which build of the functions runs.
#[derive(Debug, Clone)]
pub enum Artifacts {
    /// The host's test build: `dir/<binary>`.
    Host { dir: PathBuf },
    /// `sam build`'s `dir/<LogicalId>/bootstrap`, under `qemu` (none on an arm64 host).
    SamBuild { dir: PathBuf, qemu: Option<Qemu> },
}

impl Artifacts {
    /// `HSBRIDGE_SAM_BUILD_DIR`'s bootstraps if it is set, else the host test build.
    pub fn chosen() -> Result<Self> {
        if let Some(dir) = std::env::var_os(SAM_BUILD_DIR_VAR) {
            let qemu = if std::env::consts::ARCH == "aarch64" {
                None
            } else {
                Some(qemu()?)
            };
            return Ok(Artifacts::SamBuild {
                dir: PathBuf::from(dir),
                qemu,
            });
        }
        let exe = std::env::current_exe().context("locating the test executable")?;
        // target/<profile>/deps/<test>: the binaries are in target/<profile>.
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .context("the test executable has no target directory")?
            .to_path_buf();
        Ok(Artifacts::Host { dir })
    }

    /// Whether the functions run under qemu.
    pub fn emulated(&self) -> bool {
        matches!(self, Artifacts::SamBuild { qemu: Some(_), .. })
    }

    /// What a test prints to say which build it ran.
    pub fn describe(&self) -> String {
        match self {
            Artifacts::Host { dir } => format!("the host test build in {}", dir.display()),
            Artifacts::SamBuild { dir, qemu: Some(q) } => format!(
                "sam build's arm64 bootstraps in {}, under {} -L {} (behaviour only: timing under emulation is no figure)",
                dir.display(),
                q.program.display(),
                q.root.display()
            ),
            Artifacts::SamBuild { dir, qemu: None } => {
                format!(
                    "sam build's arm64 bootstraps in {}, natively",
                    dir.display()
                )
            }
        }
    }

    /// The program and arguments that run `function`.
    fn command(&self, function: &Function) -> Result<(PathBuf, Vec<String>)> {
        let (binary, qemu) = match self {
            Artifacts::Host { dir } => (dir.join(&function.binary), None),
            Artifacts::SamBuild { dir, qemu } => (
                dir.join(&function.logical_id).join("bootstrap"),
                qemu.as_ref(),
            ),
        };
        if !binary.is_file() {
            bail!(
                "{} is missing: {}",
                binary.display(),
                match self {
                    Artifacts::Host { .. } =>
                        "build the workspace's binaries first (cargo build --workspace --bins --tests, as ./scripts/test does)",
                    Artifacts::SamBuild { .. } =>
                        "run scripts/check-infra --build (sam build) first",
                }
            );
        }
        Ok(match qemu {
            // `-L`, not QEMU_LD_PREFIX: qemu passes its own environment on to the function.
            Some(q) => (
                q.program.clone(),
                vec![
                    "-L".to_owned(),
                    q.root.display().to_string(),
                    binary.display().to_string(),
                ],
            ),
            None => (binary, Vec::new()),
        })
    }

    fn init_timeout(&self) -> Duration {
        match self {
            Artifacts::SamBuild { qemu: Some(_), .. } => Duration::from_secs(120),
            _ => Duration::from_secs(30),
        }
    }
}

fn qemu() -> Result<Qemu> {
    let root = std::env::var_os(QEMU_LD_PREFIX_VAR)
        .map_or_else(|| PathBuf::from(DEBIAN_ARM64_ROOT), PathBuf::from);
    if !root.join("lib/ld-linux-aarch64.so.1").is_file() {
        bail!(
            "{SAM_BUILD_DIR_VAR} is set but {} has no lib/ld-linux-aarch64.so.1, which the arm64 bootstraps load: install Debian's libc6-arm64-cross and libgcc-s1-arm64-cross, or set {QEMU_LD_PREFIX_VAR} to an arm64 root",
            root.display()
        );
    }
    if let Some(q) = std::env::var_os(QEMU_VAR) {
        return Ok(Qemu {
            program: PathBuf::from(q),
            root,
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["qemu-aarch64", "qemu-aarch64-static"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(Qemu {
                    program: candidate,
                    root,
                });
            }
        }
    }
    bail!(
        "{SAM_BUILD_DIR_VAR} is set but no qemu-aarch64 was found ({QEMU_VAR}, or qemu-aarch64 / qemu-aarch64-static on PATH): install Debian's qemu-user (or qemu-user-static)"
    )
}

/// The stand's own SDK configuration: moto's, with timeouts that outlast a loaded machine
/// (the functions keep their own, production timeouts).
pub async fn sdk() -> aws_config::SdkConfig {
    let sdk = hsbridge_integration_tests::aws::sdk().await;
    sdk.to_builder()
        .timeout_config(
            aws_smithy_types::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
        .build()
}

/// One parameter set a deploy might use.
#[derive(Debug, Clone)]
pub struct ParameterSet {
    pub label: String,
    pub overrides: Parameters,
}

fn set(label: &str, pairs: &[(&str, &str)]) -> ParameterSet {
    ParameterSet {
        label: label.to_owned(),
        overrides: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// The template's defaults (the demo API; its rule refuses this deploy without AllowDemoApi,
/// which does not change any function's environment).
pub fn template_defaults() -> ParameterSet {
    set("the template's defaults", &[])
}

/// samconfig.toml's `[env]` `parameter_overrides`.
pub fn samconfig(env: &str) -> Result<ParameterSet> {
    let all = template::samconfig_overrides()?;
    let overrides = all
        .get(env)
        .with_context(|| format!("samconfig.toml has no [{env}] deploy parameters"))?
        .clone();
    Ok(ParameterSet {
        label: format!("samconfig.toml [{env}]"),
        overrides,
    })
}

/// The other branch of every condition a function's environment depends on: a protected API
/// of one's own, a custom domain with a base path, optional scopes, enrichment with a private
/// app's tier.
pub fn every_other_branch() -> ParameterSet {
    set(
        "every other branch (own API, custom domain, enrichment)",
        &[
            (
                "ProtectedApiUrl",
                "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
            ),
            (
                "ProtectedApiStageArn",
                "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod",
            ),
            ("ProtectedApiRegion", "eu-west-1"),
            ("CustomDomainName", "hooks.example.com"),
            (
                "CustomDomainCertificateArn",
                "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d",
            ),
            ("CustomDomainBasePath", "v1"),
            ("OAuthOptionalScopes", "crm.objects.companies.read"),
            ("EnrichProperties", "email,firstname"),
            ("HubSpotDistribution", "private"),
            ("HubSpotAccountTier", "professional"),
        ],
    )
}

/// A deployed stack and where its functions reach AWS.
#[derive(Debug)]
pub struct Deployment {
    pub stack: Stack,
    pub functions: Vec<Function>,
    /// The AWS endpoint given to every function process.
    pub endpoint: String,
}

/// Translates the template with `set`, creates the stack in moto and evaluates every
/// function's environment.
pub async fn deploy(sdk: &aws_config::SdkConfig, set: &ParameterSet) -> Result<Deployment> {
    let stack_name = hsbridge_integration_tests::aws::unique("hsbridge");
    let translated = template::translate(&stack_name, &set.overrides)
        .with_context(|| format!("translating template.yaml with {}", set.label))?;
    let stack = Stack::create(sdk, translated)
        .await
        .with_context(|| format!("creating the stack of {} in moto", set.label))?;
    let functions = stack
        .functions()
        .with_context(|| format!("evaluating the functions' environments ({})", set.label))?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").context(
        "AWS_ENDPOINT_URL is not set: run ./scripts/test, which starts moto and sets it",
    )?;
    Ok(Deployment {
        stack,
        functions,
        endpoint,
    })
}

impl Deployment {
    pub fn function(&self, logical_id: &str) -> Result<&Function> {
        self.functions
            .iter()
            .find(|f| f.logical_id == logical_id)
            .with_context(|| format!("the stack has no function {logical_id}"))
    }

    /// The session token of `role`'s credentials in the stand.
    pub fn session_token(role: &str) -> String {
        format!("stand-session-{role}")
    }

    /// What the process of `function` gets: Lambda's variables, then the template's (with
    /// `overrides` applied on top, which a test must name), then the AWS endpoint of the stand.
    pub fn process_env(
        &self,
        function: &Function,
        runtime_api: &str,
        overrides: &BTreeMap<String, Option<String>>,
    ) -> Vec<(String, String)> {
        let session = Self::session_token(&function.role);
        let mut env = lambda_env(&Execution {
            function_name: &function.name,
            runtime_api,
            region: REGION,
            memory_mb: function.memory_mb,
            access_key_id: &function.role,
            secret_access_key: ROLE_SECRET_KEY,
            log_format: function.log_format.as_deref(),
            log_level: function.log_level.as_deref(),
        });
        env.push(("AWS_SESSION_TOKEN".to_owned(), session));
        let mut own = function.environment.clone();
        for (name, value) in overrides {
            match value {
                Some(v) => own.insert(name.clone(), v.clone()),
                None => own.remove(name),
            };
        }
        env.extend(own);
        // The emulated account: the one variable that exists only because this is not AWS.
        env.push(("AWS_ENDPOINT_URL".to_owned(), self.endpoint.clone()));
        env
    }

    /// Starts `function` and waits for its cold start to end (its first `/next`), or fails with
    /// what the process logged.
    pub async fn start(
        &self,
        artifacts: &Artifacts,
        function: &Function,
        overrides: &BTreeMap<String, Option<String>>,
    ) -> Result<Running> {
        let api = RuntimeApi::start(&function.name).await?;
        let env = self.process_env(function, &api.endpoint(), overrides);
        let (program, args) = artifacts.command(function)?;
        let log = log_path(&self.stack.translated.stack_name, &function.logical_id)?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut proc = Proc::spawn(&program, &args, &env, &log)?;
        let started = Instant::now();
        let timeout = artifacts.init_timeout();
        loop {
            if api.first_next().is_some() && api.init_error().is_none() {
                return Ok(Running {
                    api,
                    _proc: proc,
                    log,
                });
            }
            if let Some(status) = proc.exited() {
                bail!(
                    "{}'s cold start failed: the process exited ({status}); init error: {:?}; it logged:\n{}",
                    function.logical_id,
                    api.init_error(),
                    tail(&log)
                );
            }
            if let Some(e) = api.init_error() {
                bail!("{}'s cold start failed: {e}", function.logical_id);
            }
            if started.elapsed() > timeout {
                bail!(
                    "{} did not ask for an event within {timeout:?}; it logged:\n{}",
                    function.logical_id,
                    tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A function process on its Runtime API; killed when dropped.
#[derive(Debug)]
pub struct Running {
    pub api: RuntimeApi,
    _proc: Proc,
    pub log: PathBuf,
}

fn log_path(stack: &str, function: &str) -> Result<PathBuf> {
    let dir = std::env::var_os("HSBRIDGE_TEST_LOG_DIR")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("deployed");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(format!("{stack}-{function}.log")))
}

/// The last lines a process logged.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
