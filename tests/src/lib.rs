//! hsbridge's end-to-end tests live in `integration/` (one test binary). They need moto, which
//! `scripts/test` starts and points `AWS_ENDPOINT_URL` at.
