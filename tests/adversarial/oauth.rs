//! `GET /oauth/install` and `GET /oauth/callback`: install only ever redirects to HubSpot's
//! authorize page with the registered redirect URL; the callback refuses (400, one fixed page)
//! anything but a fresh, authentic, matching state cookie before HubSpot is called.

use crate::harness::*;
use axum::body::Body;
use http::{Request, StatusCode};
use std::sync::atomic::Ordering;
use tower::ServiceExt;

fn install(query: &str) -> http::request::Builder {
    get(&format!("/oauth/install{query}"))
}

/// The OAuth routes' table. Only the controls store an account or call HubSpot.
pub fn cases() -> Vec<Case> {
    let state = oauth_state();
    let s = state.as_str();
    let fresh = state_cookie(NOW);
    let forged = {
        let (payload, _) = fresh.split_once('.').unwrap();
        format!("{payload}.{}", "A".repeat(43))
    };
    vec![
        Case::new(
            "install redirects to HubSpot's authorize page (control)",
            install("").body(Body::empty()).unwrap(),
            302,
        ),
        Case::new(
            "install ignores a redirect_uri in its query",
            install("?redirect_uri=https%3A%2F%2Fevil.example%2Fsteal")
                .body(Body::empty())
                .unwrap(),
            302,
        ),
        Case::new(
            "install ignores return and next parameters",
            install("?next=//evil.example&return_to=https://evil.example&state=chosen")
                .body(Body::empty())
                .unwrap(),
            302,
        ),
        Case::new(
            "install ignores Host, X-Forwarded-Host and Forwarded",
            install("")
                .header("host", "evil.example")
                .header("x-forwarded-host", "evil.example")
                .header("forwarded", "host=evil.example;proto=http")
                .body(Body::empty())
                .unwrap(),
            302,
        ),
        Case::new(
            "install ignores encoded CR LF in its query (no header injection)",
            install("?x=%0d%0aSet-Cookie:%20hubspot_oauth_state=attacker")
                .body(Body::empty())
                .unwrap(),
            302,
        ),
        Case::new(
            "install is GET only",
            install("").method("POST").body(Body::empty()).unwrap(),
            405,
        ),
        Case::new(
            "a callback with a fresh cookie, its state and a code installs the account (control)",
            good_callback(),
            200,
        )
        .handed_on(),
        Case::new(
            "a redirect_uri in the callback is ignored: the registered one is used and no redirect follows (control)",
            callback(
                &format!("code={GOOD_CODE}&state={s}&redirect_uri=https%3A%2F%2Fevil.example&next=//evil.example"),
                Some(&fresh),
            ),
            200,
        )
        .handed_on(),
        Case::new(
            "a callback replayed inside the cookie's ten minutes fails at HubSpot (the code is single-use), gets the start-again page and stores nothing",
            good_callback(),
            400,
        )
        .after(good_callback(), 60_000)
        .refused_upstream(),
        Case::new(
            "a callback replayed after the cookie's ten minutes is refused before HubSpot is called",
            good_callback(),
            400,
        )
        .after(good_callback(), 600_001),
        Case::new(
            "no state cookie",
            callback(&format!("code={GOOD_CODE}&state={s}"), None),
            400,
        ),
        Case::new(
            "no state in the URL",
            callback(&format!("code={GOOD_CODE}"), Some(&fresh)),
            400,
        ),
        Case::new(
            "a state that is not the cookie's",
            callback(
                &format!("code={GOOD_CODE}&state={}", "B".repeat(43)),
                Some(&fresh),
            ),
            400,
        ),
        Case::new(
            "a cookie with a forged MAC",
            callback(&format!("code={GOOD_CODE}&state={s}"), Some(&forged)),
            400,
        ),
        Case::new(
            "a cookie issued more than a minute in the future",
            callback(
                &format!("code={GOOD_CODE}&state={s}"),
                Some(&state_cookie(NOW + 120_000)),
            ),
            400,
        ),
        Case::new(
            "an oversized (8 KiB) cookie",
            callback(
                &format!("code={GOOD_CODE}&state={s}"),
                Some(&"A".repeat(8192)),
            ),
            400,
        ),
        Case::new(
            "two state cookies (one planted by a sibling domain)",
            with(
                callback(&format!("code={GOOD_CODE}&state={s}"), None),
                "cookie",
                format!("{HOST_STATE_COOKIE_NAME}={fresh}; {HOST_STATE_COOKIE_NAME}={forged}").as_bytes(),
            ),
            400,
        ),
        Case::new(
            "two Cookie headers each holding a state cookie",
            twice(
                callback(&format!("code={GOOD_CODE}&state={s}"), Some(&fresh)),
                "cookie",
                format!("{HOST_STATE_COOKIE_NAME}={fresh}").as_bytes(),
            ),
            400,
        ),
        Case::new(
            "a state cookie without the __Host- prefix (a sibling subdomain can set that name)",
            with(
                callback(&format!("code={GOOD_CODE}&state={s}"), None),
                "cookie",
                format!("hubspot_oauth_state={fresh}").as_bytes(),
            ),
            400,
        ),
        Case::new(
            "a Cookie header that is not UTF-8",
            with(
                callback(&format!("code={GOOD_CODE}&state={s}"), None),
                "cookie",
                b"__Host-hubspot_oauth_state=\xff\xfe",
            ),
            400,
        ),
        Case::new(
            "a repeated state parameter",
            callback(&format!("code={GOOD_CODE}&state={s}&state={s}"), Some(&fresh)),
            400,
        ),
        Case::new(
            "a repeated code parameter",
            callback(
                &format!("code={GOOD_CODE}&code=other&state={s}"),
                Some(&fresh),
            ),
            400,
        ),
        Case::new(
            "HubSpot's error parameter",
            callback(
                &format!("error=access_denied&code={GOOD_CODE}&state={s}"),
                Some(&fresh),
            ),
            400,
        ),
        Case::new(
            "no code",
            callback(&format!("state={s}"), Some(&fresh)),
            400,
        ),
        Case::new(
            "an empty code",
            callback(&format!("code=&state={s}"), Some(&fresh)),
            400,
        ),
        Case::new(
            "a state that is not UTF-8 once decoded",
            callback(&format!("code={GOOD_CODE}&state=%FF%FE"), Some(&fresh)),
            400,
        ),
        Case::new(
            "an oversized (60 KiB) state",
            callback(
                &format!("code={GOOD_CODE}&state={}", "s".repeat(60 * 1024)),
                Some(&fresh),
            ),
            400,
        ),
        Case::new(
            "a 10 MB body on the callback is ignored",
            Request::get(format!("/oauth/callback?code={GOOD_CODE}&state={s}"))
                .body(Body::from(vec![b'x'; TEN_MB]))
                .unwrap(),
            400,
        ),
        Case::new(
            "the callback is GET only",
            Request::post(format!("/oauth/callback?code={GOOD_CODE}&state={s}"))
                .header("cookie", format!("{HOST_STATE_COOKIE_NAME}={fresh}"))
                .body(Body::empty())
                .unwrap(),
            405,
        ),
    ]
}

#[tokio::test]
async fn every_hostile_oauth_request_gets_its_documented_status_and_nothing_is_stored() {
    let answers = run_table(async || OAuth::new(), cases()).await;
    for (name, status, headers, body) in answers {
        // The only redirect is install's, to HubSpot's authorize page with the registered
        // redirect URL; nothing from the request reaches a header.
        if let Some(location) = headers.get("location") {
            let location = location.to_str().unwrap();
            assert_eq!(status, StatusCode::FOUND, "{name}");
            assert!(
                location.starts_with(&format!(
                    "{APP_BASE}/oauth/authorize?client_id={CLIENT_ID}&redirect_uri=https%3A%2F%2Fbridge.example.com%2Foauth%2Fcallback&"
                )),
                "{name}: {location}"
            );
            assert!(
                !location.contains("evil") && !location.contains("chosen"),
                "{name}: {location}"
            );
        } else {
            assert!(!status.is_redirection(), "{name}");
        }
        for cookie in headers.get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            assert!(!cookie.contains("attacker"), "{name}: {cookie}");
            assert!(
                cookie.contains("HttpOnly; Secure; SameSite=Lax"),
                "{name}: {cookie}"
            );
        }
        // Refusals are the one fixed page, whatever the reason.
        if status == StatusCode::BAD_REQUEST {
            let page = String::from_utf8_lossy(&body);
            assert!(
                page.contains("This install link is not valid or has expired."),
                "{name}"
            );
            assert!(
                !page.contains("evil") && !page.contains(GOOD_CODE),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn the_code_is_only_ever_exchanged_for_the_registered_redirect_url() {
    let oauth = OAuth::new();
    let request = callback(
        &format!(
            "code={GOOD_CODE}&state={}&redirect_uri=https%3A%2F%2Fevil.example",
            oauth_state().as_str()
        ),
        Some(&state_cookie(NOW)),
    );
    let (status, headers, _) = send(oauth.router(), request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("location").is_none());
    assert_eq!(*oauth.hubspot.redirect_uris.lock().unwrap(), [REDIRECT_URL]);
    assert_eq!(oauth.hubspot.exchanges.load(Ordering::SeqCst), 1);
    assert_eq!(oauth.store.all().unwrap().len(), 1);
}

/// A browser's view of one `Set-Cookie`: the `name=value` pair and its `Path`.
fn cookie_and_path(set_cookie: &str) -> (String, String) {
    let mut parts = set_cookie.split("; ");
    let pair = parts.next().unwrap().to_owned();
    let path = parts
        .find_map(|a| a.strip_prefix("Path="))
        .unwrap_or_else(|| panic!("no Path in {set_cookie}"))
        .to_owned();
    (pair, path)
}

#[tokio::test]
async fn an_install_behind_an_api_base_path_completes_because_the_cookie_reaches_the_callback() {
    // The template's callback under `CustomDomainBasePath`: API Gateway strips `/v1` before the
    // function sees the request, but the browser decides on the public path.
    let public_callback = "/v1/oauth/callback";
    let oauth = OAuth::with_redirect_url(&format!("https://hooks.example.com{public_callback}"));
    let response = oauth
        .router()
        .oneshot(install("").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    let state = location.split("&state=").nth(1).unwrap().to_owned();
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    let (cookie, path) = cookie_and_path(set_cookie);

    // RFC 6265 §5.4: the browser sends the cookie back only if its Path matches the callback.
    assert!(
        hsbridge_verify::path_matches(&path, public_callback),
        "{set_cookie} never reaches {public_callback}"
    );
    let response = oauth
        .router()
        .oneshot(
            get(&format!("/oauth/callback?code={GOOD_CODE}&state={state}"))
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        oauth.store.all().unwrap().len(),
        1,
        "the account is installed"
    );
}
