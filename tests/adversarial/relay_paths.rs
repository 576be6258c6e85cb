//! Segments the relay forwards that a server behind the protected API could still read as a
//! step up: `..;` (Tomcat and Jetty strip path parameters before resolving dots), `.. ` and
//! `...` (Windows servers trim trailing spaces and dots), and dots of other scripts that
//! compatibility normalisation (NFKC) turns into `.`. API Gateway's route and the relay's IAM
//! grant see them below the relay prefix, so the relay refuses them before forwarding.

use crate::harness::*;

fn signed_get(path: &str) -> http::Request<axum::body::Body> {
    relayed(
        "GET",
        &format!("/hubspot/relay{path}?portalId=62515"),
        b"".to_vec(),
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "a dotted name that is not a dot segment is forwarded (control)",
            signed_get("/files/..config/v1.2/a.b."),
            200,
        )
        .handed_on(),
        Case::new(
            "a path parameter on an ordinary segment is data (control)",
            signed_get("/deals;v=1/42"),
            200,
        )
        .handed_on(),
        Case::new("a ..; segment is refused", signed_get("/a/..;/admin"), 400),
        Case::new(
            "a ..; segment with a parameter is refused",
            signed_get("/a/..;jsessionid=x/admin"),
            400,
        ),
        Case::new(
            "an encoded ..%3B segment is refused",
            signed_get("/a/..%3B/admin"),
            400,
        ),
        Case::new("a .; segment is refused", signed_get("/a/.;/admin"), 400),
        Case::new("a ... segment is refused", signed_get("/a/.../admin"), 400),
        Case::new(
            "a .. with a trailing encoded space is refused",
            signed_get("/a/..%20/admin"),
            400,
        ),
        Case::new(
            "a .. of fullwidth full stops is refused",
            signed_get("/a/%EF%BC%8E%EF%BC%8E/admin"),
            400,
        ),
        Case::new(
            "a .. of one-dot leaders is refused",
            signed_get("/a/%E2%80%A4%E2%80%A4/admin"),
            400,
        ),
        Case::new(
            "a .. of small full stops is refused",
            signed_get("/a/%EF%B9%92%EF%B9%92/admin"),
            400,
        ),
    ]
}

#[tokio::test]
async fn segments_a_server_behind_the_api_would_resolve_as_dots_are_refused_and_nothing_is_forwarded()
 {
    run_table(async || Relay::new().await, cases()).await;
}
