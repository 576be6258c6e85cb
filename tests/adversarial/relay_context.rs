//! The caller's context HubSpot appends to a `hubspot.fetch` URL (`portalId`, `appId`,
//! `userId`, `userEmail`) reaches the protected API as headers the relay sets, and the query
//! travels on too. A card's user can put parameters of their own into the URL HubSpot signs, so
//! a second spelling of a context name must not pass: an API framework that binds query names
//! without regard to case (ASP.NET's model binding, .NET's `OrdinalIgnoreCase`, which maps `ı`
//! to `I`) would read the user's value where the header says HubSpot's.

use crate::harness::*;

fn fetch(query: &str) -> http::Request<axum::body::Body> {
    relayed(
        "GET",
        &format!("/hubspot/relay/deals/42?{query}"),
        b"".to_vec(),
    )
}

pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "HubSpot's context parameters become the relay's headers (control)",
            fetch("portalId=62515&userId=7&userEmail=ann%40example.com&appId=4242"),
            200,
        )
        .handed_on(),
        Case::new(
            "a context name as a value, not a name, is data (control)",
            fetch("portalId=62515&userId=7&q=userid&userid%3D1"),
            200,
        )
        .handed_on(),
        Case::new(
            "portalid beside portalId is refused",
            fetch("portalid=999&portalId=62515"),
            400,
        ),
        Case::new(
            "PORTALID beside portalId is refused",
            fetch("portalId=62515&PORTALID=999"),
            400,
        ),
        Case::new(
            "userid beside userId is refused",
            fetch("userid=1&portalId=62515&userId=7"),
            400,
        ),
        Case::new(
            "USEREMAIL beside userEmail is refused",
            fetch("USEREMAIL=ceo%40victim.example&portalId=62515&userEmail=ann%40example.com"),
            400,
        ),
        Case::new(
            "appid beside appId is refused",
            fetch("appid=1&portalId=62515&appId=4242"),
            400,
        ),
        Case::new(
            "a dotless i (userıd, .NET's case-blind match of userId) is refused",
            fetch("user%C4%B1d=1&portalId=62515&userId=7"),
            400,
        ),
        Case::new(
            "a long s (uſerEmail, which upper-cases to USEREMAIL) is refused",
            fetch("u%C5%BFerEmail=ceo%40victim.example&portalId=62515&userEmail=ann%40example.com"),
            400,
        ),
        Case::new(
            "userid with no userId is refused too (it is no parameter HubSpot sends)",
            fetch("portalId=62515&userid=1"),
            400,
        ),
    ]
}

#[tokio::test]
async fn a_context_parameter_spelled_in_another_case_is_refused_and_nothing_is_forwarded() {
    run_table(async || Relay::new().await, cases()).await;
}
