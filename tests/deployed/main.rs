//! The stack as it deploys: `template.yaml` translated offline (aws-sam-translator), its
//! resources created in moto, each function's binary cold-started under a Lambda Runtime API
//! emulator with exactly the environment the template gives it, and one journey through those
//! processes (install, webhook, delivery, relay). See `stand.rs` for which binaries run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Each test says which build of the functions it ran.
#![allow(clippy::print_stdout)]

mod cold_start;
mod journey;
mod resources;
mod stand;
