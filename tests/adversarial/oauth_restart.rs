//! `GET /oauth/callback` for installs started on HubSpot's side: a code with neither a state nor
//! a state cookie is sent (302) to `/oauth/install` beside the registered redirect URL and never
//! exchanged; every other mix of state, cookie and code that is not one fresh install started
//! here gets the 400 page. Nothing from the request reaches the redirect, and no mix gets a
//! code exchanged or an account stored.

use crate::harness::*;
use hsbridge_verify::{Secret, SecretSet, mint_state_cookie};
use http::StatusCode;

const INSTALL: &str = "https://bridge.example.com/oauth/install";

/// A state cookie as another deployment (another app's secret) would mint it.
fn cookie_of_another_install() -> String {
    mint_state_cookie(
        &SecretSet::new(Secret::new("another-apps-client-secret")).unwrap(),
        &oauth_state(),
        None,
        NOW,
    )
    .unwrap()
}

pub fn cases() -> Vec<Case> {
    let s = oauth_state();
    let s = s.as_str();
    let fresh = state_cookie(NOW);
    let code = format!("code={GOOD_CODE}");
    vec![
        Case::new(
            "a code with no state and no cookie restarts the install and is not exchanged",
            callback(&code, None),
            302,
        ),
        Case::new(
            "a code with an empty state and no cookie restarts the install",
            callback(&format!("{code}&state="), None),
            302,
        ),
        Case::new(
            "a restart ignores redirect_uri, next and encoded CR LF in the query",
            callback(
                &format!(
                    "{code}&redirect_uri=https%3A%2F%2Fevil.example&next=//evil.example&x=%0d%0aLocation:%20https://evil.example"
                ),
                None,
            ),
            302,
        ),
        Case::new(
            "a restart ignores Host, X-Forwarded-Host and Forwarded",
            {
                let mut r = callback(&code, None);
                for (name, value) in [
                    ("host", "evil.example"),
                    ("x-forwarded-host", "evil.example"),
                    ("forwarded", "host=evil.example;proto=http"),
                ] {
                    r.headers_mut().insert(name, value.parse().unwrap());
                }
                r
            },
            302,
        ),
        Case::new(
            "two state cookies and no state restart the install (the cookie is ambiguous, so absent)",
            with(
                callback(&code, None),
                "cookie",
                format!("{HOST_STATE_COOKIE_NAME}={fresh}; {HOST_STATE_COOKIE_NAME}={fresh}")
                    .as_bytes(),
            ),
            302,
        ),
        Case::new(
            "a repeated code with no state and no cookie is refused, not restarted",
            callback(&format!("{code}&code=other"), None),
            400,
        ),
        Case::new(
            "HubSpot's error with no state and no cookie is refused, not restarted",
            callback(&format!("error=access_denied&{code}"), None),
            400,
        ),
        Case::new(
            "a code with a state but no cookie is refused (a login CSRF link to a victim's browser)",
            callback(&format!("{code}&state={s}"), None),
            400,
        ),
        Case::new(
            "a code with no state beside a fresh cookie is refused (an attacker's code in a victim's install)",
            callback(&code, Some(&fresh)),
            400,
        ),
        Case::new(
            "a code with an empty state beside a fresh cookie is refused",
            callback(&format!("{code}&state="), Some(&fresh)),
            400,
        ),
        Case::new(
            "a cookie minted by another install is refused, with or without its state",
            callback(
                &format!("{code}&state={s}"),
                Some(&cookie_of_another_install()),
            ),
            400,
        ),
        Case::new(
            "a cookie minted by another install and no state is refused, not restarted",
            callback(&code, Some(&cookie_of_another_install())),
            400,
        ),
        Case::new(
            "an expired cookie with its state is refused",
            callback(
                &format!("{code}&state={s}"),
                Some(&state_cookie(NOW - 600_001)),
            ),
            400,
        ),
        Case::new(
            "an expired cookie and no state is refused, not restarted",
            callback(&code, Some(&state_cookie(NOW - 600_001))),
            400,
        ),
        Case::new(
            "a state spelled with another case is refused",
            callback(
                &format!("{code}&state={}", s.to_ascii_uppercase()),
                Some(&fresh),
            ),
            400,
        ),
        Case::new(
            "a state parameter spelled st%61te is the same parameter, so repeated is refused",
            callback(&format!("{code}&state={s}&st%61te={s}"), Some(&fresh)),
            400,
        ),
        Case::new(
            "a code parameter spelled c%6Fde is the same parameter, so repeated is refused",
            callback(&format!("{code}&c%6Fde=other&state={s}"), Some(&fresh)),
            400,
        ),
    ]
}

#[tokio::test]
async fn no_mix_of_state_cookie_and_code_gets_a_code_exchanged_and_a_restart_goes_only_to_the_install_route()
 {
    let answers = run_table(async || OAuth::new(), cases()).await;
    for (name, status, headers, _) in answers {
        let location = headers.get("location").map(|l| l.to_str().unwrap());
        if status == StatusCode::FOUND {
            assert_eq!(location, Some(INSTALL), "{name}");
            // The restart mints nothing itself: install does, on the next request.
            assert!(headers.get("set-cookie").is_none(), "{name}");
            assert_eq!(
                headers.get("cache-control").map(|v| v.to_str().unwrap()),
                Some("no-store"),
                "{name}"
            );
        } else {
            assert_eq!(location, None, "{name}");
        }
    }
}

#[tokio::test]
async fn a_restart_behind_an_api_base_path_goes_to_the_install_route_beside_the_callback() {
    let oauth = OAuth::with_redirect_url("https://hooks.example.com/v1/oauth/callback");
    let (status, headers, _) =
        send(oauth.router(), callback(&format!("code={GOOD_CODE}"), None)).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        headers.get("location").unwrap(),
        "https://hooks.example.com/v1/oauth/install"
    );
    assert_eq!(oauth.outbound(), 0);
}
