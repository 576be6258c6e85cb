//! Intentionally empty: only the dependency versions in `Cargo.toml` matter.
