//! Holding a function process to what Lambda gives its memory size: CPU in proportion to memory
//! (one vCPU at 1,769 MB, so 128 MB gets 128/1769 ≈ 7.2 % of one CPU) and the memory itself.
//! <https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>
//!
//! A CFS bandwidth quota does the CPU part: `quota = period × memory / 1769` of one CPU. On a
//! cgroup v1 layout (separate `cpu` and `memory` hierarchies under `/sys/fs/cgroup/`) that is
//! `cpu.cfs_quota_us` / `cpu.cfs_period_us` and `memory.limit_in_bytes`; on a v2 (unified) one,
//! `cpu.max` and `memory.max`. Only the function process is moved into the group, never moto or
//! the stand-ins. Creating groups needs root; the group is removed when dropped, after its
//! process (which the caller stops first).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Lambda's memory size that gets one full vCPU.
pub const MB_PER_VCPU: u64 = 1769;
/// The CFS period used, µs (the kernel's default).
const PERIOD_US: u64 = 100_000;
const ROOT: &str = "/sys/fs/cgroup";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A cgroup (one per hierarchy involved) holding one process to a memory size's share.
#[derive(Debug)]
pub struct Hold {
    dirs: Vec<PathBuf>,
}

/// The CPU quota, µs per [`PERIOD_US`], for `memory_mb` of memory.
pub fn quota_us(memory_mb: u64) -> u64 {
    (PERIOD_US * memory_mb / MB_PER_VCPU).max(1_000)
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

impl Hold {
    /// A new group limited to `memory_mb` and its CPU share.
    pub fn new(memory_mb: u64) -> Result<Self> {
        let name = format!(
            "hsbridge-perf-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let bytes = (memory_mb * 1024 * 1024).to_string();
        let quota = quota_us(memory_mb);
        let root = Path::new(ROOT);
        let mut hold = Self { dirs: Vec::new() };
        if root.join("cpu").join("cpu.cfs_quota_us").exists() {
            // cgroup v1.
            let cpu = root.join("cpu").join(&name);
            std::fs::create_dir(&cpu).with_context(|| format!("creating {}", cpu.display()))?;
            hold.dirs.push(cpu.clone());
            write(&cpu.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
            write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            let memory = root.join("memory").join(&name);
            std::fs::create_dir(&memory)
                .with_context(|| format!("creating {}", memory.display()))?;
            hold.dirs.push(memory.clone());
            write(&memory.join("memory.limit_in_bytes"), &bytes)?;
        } else if root.join("cgroup.controllers").exists() {
            // cgroup v2: the controllers must be enabled for the children of the root.
            let controllers = std::fs::read_to_string(root.join("cgroup.controllers"))?;
            if !(controllers.contains("cpu") && controllers.contains("memory")) {
                bail!("this cgroup v2 root offers no cpu or memory controller: {controllers}");
            }
            drop(write(&root.join("cgroup.subtree_control"), "+cpu +memory"));
            let dir = root.join(&name);
            std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            hold.dirs.push(dir.clone());
            write(&dir.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
            write(&dir.join("memory.max"), &bytes)?;
        } else {
            bail!("no cgroup cpu controller under {ROOT} (neither v1 nor v2)");
        }
        Ok(hold)
    }

    /// Moves `pid` into the group, in every hierarchy.
    pub fn add(&self, pid: u32) -> Result<()> {
        for dir in &self.dirs {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // The process is gone by now; an empty group is removed with rmdir.
        for dir in &self.dirs {
            drop(std::fs::remove_dir(dir));
        }
    }
}

/// Whether this machine lets the harness create a group (root, and a cpu controller).
pub fn available() -> Result<()> {
    drop(Hold::new(128)?);
    Ok(())
}
