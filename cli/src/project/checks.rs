//! What HubSpot would refuse in a project, refused here first with a sentence naming the value.

use anyhow::{Result, bail};
use std::net::IpAddr;

/// Whether URLs may point at this machine (the project `hsbridge dev` renders for inspection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Deployed,
    Local,
}

/// A URL HubSpot calls (webhook `targetUrl`, `permittedUrls.fetch`, the OAuth redirect):
/// HTTPS, a public host name or address, no user info and no fragment. HubSpot refuses
/// non-HTTPS and localhost targets for webhooks and `hubspot.fetch`:
/// https://developers.hubspot.com/docs/apps/developer-platform/add-features/configure-webhooks
/// https://developers.hubspot.com/docs/apps/developer-platform/add-features/ui-extensibility/fetching-data
pub fn public_url(what: &str, url: &str, target: Target) -> Result<url::Url> {
    let parsed =
        url::Url::parse(url).map_err(|e| anyhow::anyhow!("{what} {url:?} is not a URL ({e})"))?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let local_host = is_local_host(&host);
    match target {
        Target::Local => {
            if !(parsed.scheme() == "https" || (parsed.scheme() == "http" && local_host)) {
                bail!("{what} {url:?} must be https, or http on this machine");
            }
        }
        Target::Deployed => {
            if parsed.scheme() != "https" {
                bail!(
                    "{what} {url:?} is not HTTPS: HubSpot only calls https:// URLs; use the stack's output"
                );
            }
            if local_host || host.is_empty() {
                bail!(
                    "{what} {url:?} points at this machine ({host}): HubSpot cannot reach it; use the deployed stack's URL (`hsbridge dev` renders a local copy for inspection only)"
                );
            }
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        bail!("{what} {url:?} carries user info; remove it");
    }
    if parsed.fragment().is_some() {
        bail!("{what} {url:?} has a fragment (#...); remove it");
    }
    if parsed.query().is_some() {
        bail!(
            "{what} {url:?} has a query string; HubSpot appends its own and the stack's routes refuse others"
        );
    }
    Ok(parsed)
}

fn is_local_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Err(_) => false,
    }
}

/// The read scope a subscription to events of `object_type` needs. HubSpot only sends an app
/// the events of objects it may read ("your app will need to be configured to authorize the
/// associated scopes"): https://developers.hubspot.com/docs/api/webhooks (Scopes).
/// `None` for a type this table does not know.
pub fn read_scope(object_type: &str) -> Option<&'static str> {
    let t = object_type.to_ascii_lowercase();
    Some(match t.as_str() {
        "contact" | "contacts" | "0-1" => "crm.objects.contacts.read",
        "company" | "companies" | "0-2" => "crm.objects.companies.read",
        "deal" | "deals" | "0-3" => "crm.objects.deals.read",
        "ticket" | "tickets" | "0-5" => "tickets",
        "product" | "products" | "0-7" => "e-commerce",
        "line_item" | "line_items" | "0-8" => "e-commerce",
        _ if t.starts_with("2-") || t.starts_with("p_") => "crm.objects.custom.read",
        _ => return None,
    })
}

/// The object type of a legacy or hub-event subscription type (`contact.propertyChange`,
/// `contact.privacyDeletion`): the part before the dot.
pub fn legacy_object_type(subscription_type: &str) -> &str {
    subscription_type
        .split_once('.')
        .map_or(subscription_type, |(t, _)| t)
}

/// A scope list as the stack takes it (space or comma separated), in order, without repeats.
pub fn split_scopes(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in text.split([' ', ',']).filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_target_that_is_not_https_or_is_this_machine_is_refused_with_the_value() {
        for bad in [
            "http://hooks.example.com/webhooks/hubspot",
            "https://localhost/webhooks/hubspot",
            "https://127.0.0.1:3000/webhooks/hubspot",
            "https://[::1]/webhooks/hubspot",
            "https://10.0.0.7/webhooks/hubspot",
            "https://app.localhost/webhooks/hubspot",
            "https://user:pw@hooks.example.com/webhooks/hubspot",
            "https://hooks.example.com/webhooks/hubspot?x=1",
            "https://hooks.example.com/webhooks/hubspot#x",
            "not a url",
        ] {
            let err = public_url("the webhook target URL", bad, Target::Deployed)
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert!(
            public_url(
                "t",
                "https://abc.execute-api.eu-west-1.amazonaws.com/webhooks/hubspot",
                Target::Deployed
            )
            .is_ok()
        );
    }

    #[test]
    fn a_local_rendering_accepts_http_on_this_machine_only() {
        assert!(public_url("t", "http://127.0.0.1:3000/x", Target::Local).is_ok());
        assert!(public_url("t", "http://hooks.example.com/x", Target::Local).is_err());
    }

    #[test]
    fn subscriptions_map_to_the_read_scope_of_their_object() {
        assert_eq!(read_scope("contact"), Some("crm.objects.contacts.read"));
        assert_eq!(read_scope("0-1"), Some("crm.objects.contacts.read"));
        assert_eq!(read_scope("2-1234"), Some("crm.objects.custom.read"));
        assert_eq!(read_scope("unicorn"), None);
        assert_eq!(legacy_object_type("contact.privacyDeletion"), "contact");
        assert_eq!(
            split_scopes("oauth, crm.objects.contacts.read oauth"),
            ["oauth", "crm.objects.contacts.read"]
        );
    }
}
