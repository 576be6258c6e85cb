//! The diagnoser's own view of an absolute URL (split without copying), and how a reference
//! URL's path differs from the received one by a leading prefix (stage or mapping key).

use super::*;

/// An absolute URL split into its parts, without copying.
pub(super) struct Url<'u> {
    pub(super) scheme: &'u str,
    pub(super) authority: &'u str,
    pub(super) path: &'u str,
    pub(super) query: Option<&'u str>,
}

impl<'u> Url<'u> {
    pub(super) fn parse(s: &'u str) -> Option<Self> {
        let (scheme, rest) = s.split_once("://")?;
        if !matches!(scheme, "http" | "https") {
            return None;
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        if authority.is_empty() {
            return None;
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        Some(Self {
            scheme,
            authority,
            path: if path.is_empty() { "/" } else { path },
            query,
        })
    }

    /// Length of `scheme://authority`.
    pub(super) fn head_len(&self) -> usize {
        self.scheme.len() + 3 + self.authority.len()
    }

    pub(super) fn build(scheme: &str, authority: &str, path: &str, query: Option<&str>) -> String {
        match query {
            Some(q) => format!("{scheme}://{authority}{path}?{q}"),
            None => format!("{scheme}://{authority}{path}"),
        }
    }

    pub(super) fn with_authority(&self, authority: &str) -> String {
        Self::build(self.scheme, authority, self.path, self.query)
    }

    pub(super) fn with_scheme(&self, scheme: &str) -> String {
        Self::build(scheme, self.authority, self.path, self.query)
    }

    pub(super) fn with_path(&self, path: &str) -> String {
        Self::build(self.scheme, self.authority, path, self.query)
    }

    pub(super) fn with_query(&self, query: Option<&str>) -> String {
        Self::build(self.scheme, self.authority, self.path, query)
    }

    pub(super) fn with_path_query(&self, path: &str, query: Option<&str>) -> String {
        Self::build(self.scheme, self.authority, path, query)
    }
}

/// How a reference path differs from the received one by a leading prefix.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum PrefixFound {
    /// The reference has a prefix the received path lacks.
    Missing,
    /// The received path has a prefix the reference lacks.
    Added,
}

/// `(which, "/prefix", path HubSpot called)` when `reference` and `received` differ by a
/// leading run of whole segments. A reference that is only a base (`/v1`) counts as a prefix.
pub(super) fn prefix_difference(
    received: &str,
    reference: &str,
) -> Option<(PrefixFound, String, String)> {
    let reference = reference.trim_end_matches('/');
    if reference.is_empty() || reference == received {
        return None;
    }
    if let Some(prefix) = reference.strip_suffix(received)
        && received.starts_with('/')
        && !prefix.is_empty()
    {
        return Some((
            PrefixFound::Missing,
            prefix.to_owned(),
            reference.to_owned(),
        ));
    }
    if let Some(prefix) = received.strip_suffix(reference)
        && reference.starts_with('/')
        && prefix.starts_with('/')
    {
        return Some((PrefixFound::Added, prefix.to_owned(), reference.to_owned()));
    }
    // A base URL: its whole path is the prefix.
    if !received.starts_with(&format!("{reference}/")) && reference.starts_with('/') {
        return Some((
            PrefixFound::Missing,
            reference.to_owned(),
            format!("{reference}{received}"),
        ));
    }
    None
}

pub(super) fn found_kind(found: PrefixFound, prefix: &str, stage: Option<&str>) -> ManglingKind {
    let single = prefix.strip_prefix('/').filter(|p| !p.contains('/'));
    let staged = single.is_some_and(|s| is_stage(s, stage));
    match (found, staged) {
        (PrefixFound::Missing, true) => ManglingKind::StagePrefixMissing,
        (PrefixFound::Missing, false) => ManglingKind::MappingKeyMissing,
        (PrefixFound::Added, true) => ManglingKind::StagePrefixAdded,
        (PrefixFound::Added, false) => ManglingKind::MappingKeyAdded,
    }
}

pub(super) fn is_stage(segment: &str, stage: Option<&str>) -> bool {
    stage == Some(segment)
        || STAGE_NAMES
            .iter()
            .any(|name| name.eq_ignore_ascii_case(segment))
}
