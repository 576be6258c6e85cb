//! How candidates are generated: the diagnoser recomputes the MAC under each mangling that
//! applies, within the budget of extra MACs, and keeps the first that matches.

use super::*;

/// One alternative reading of the request.
pub(super) struct Candidate {
    pub(super) detail: String,
    /// The URI as hashed (URI' for v3), when it differs from the received one.
    pub(super) hashed_uri: Option<String>,
    pub(super) body: Option<Vec<u8>>,
    pub(super) timestamp: Option<String>,
}

impl Candidate {
    pub(super) fn body(detail: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            detail: detail.into(),
            hashed_uri: None,
            body: Some(body),
            timestamp: None,
        }
    }

    pub(super) fn timestamp(detail: impl Into<String>, timestamp: String) -> Self {
        Self {
            detail: detail.into(),
            hashed_uri: None,
            body: None,
            timestamp: Some(timestamp),
        }
    }
}

/// The signature headers of a request, as far as they could be read.
pub(super) struct Claimed {
    pub(super) version: SignatureVersion,
    pub(super) signature: Vec<u8>,
    pub(super) timestamp: Vec<u8>,
}

pub(super) struct Diagnoser<'r, 'h> {
    pub(super) request: &'r SignedRequest<'r>,
    pub(super) secrets: &'r SecretSet,
    pub(super) hints: &'r Hints<'h>,
    pub(super) extra_macs: usize,
    pub(super) checked: Vec<ManglingKind>,
    pub(super) skipped: Vec<(ManglingKind, SkipReason)>,
    pub(super) tried: HashSet<[u8; 32]>,
}

impl<'r, 'h> Diagnoser<'r, 'h> {
    pub(super) fn new(
        request: &'r SignedRequest<'r>,
        secrets: &'r SecretSet,
        hints: &'r Hints<'h>,
    ) -> Self {
        Self {
            request,
            secrets,
            hints,
            extra_macs: 0,
            checked: Vec::new(),
            skipped: Vec::new(),
            tried: HashSet::new(),
        }
    }

    pub(super) fn run(mut self, first_failure: Check) -> Explanation {
        let claimed = self.claimed();
        let diagnosable = matches!(
            first_failure,
            Check::Mismatch
                | Check::MalformedSignature
                | Check::MalformedTimestamp
                | Check::TimestampSkew { .. }
        );
        let mut prefixes = SignaturePrefixes::default();
        let mut signature_matches = None;
        let mut diagnosis = None;
        if let (true, Some(claimed)) = (diagnosable, claimed.as_ref()) {
            prefixes.received = Some(prefix_of(&normalise_signature(claimed)));
            let expected = decode_signature(claimed.version, &claimed.signature);
            // A leading `+` read as a space is trimmed by any HTTP parser: put it back.
            let repaired = match expected {
                Some(_) => None,
                None if claimed.version == SignatureVersion::V3 => {
                    let mut with_plus = b"+".to_vec();
                    with_plus.extend_from_slice(&claimed.signature);
                    decode_signature(claimed.version, &with_plus)
                }
                None => None,
            };
            if let Some(expected) = expected.or(repaired) {
                let baseline = self.baseline(claimed, &expected, &mut prefixes);
                match (baseline, repaired.is_some()) {
                    (Some(slot), true) => {
                        diagnosis = Some(Mangling {
                            kind: ManglingKind::PlusAsSpace,
                            slot,
                            detail: "a leading `+` became a space and was trimmed away".to_owned(),
                        });
                    }
                    (Some(slot), false) => signature_matches = Some(slot),
                    (None, _) => {
                        if claimed.version == SignatureVersion::V3 {
                            self.checked.push(ManglingKind::PlusAsSpace);
                        }
                        diagnosis = self.diagnose(claimed, &expected);
                    }
                }
            } else if claimed.version == SignatureVersion::V3 {
                self.checked.push(ManglingKind::PlusAsSpace);
            }
        }
        Explanation::Invalid {
            version: claimed.as_ref().map(|c| c.version),
            first_failure,
            signature_matches,
            diagnosis,
            checked: self.checked,
            skipped: self.skipped,
            prefixes,
            extra_macs: self.extra_macs,
        }
    }

    /// The headers the verifier judged the request on (v3 if either v3 header is present).
    pub(super) fn claimed(&self) -> Option<Claimed> {
        let headers = self.request.headers;
        let get = |name: &str| headers.get(name).map(|v| v.as_bytes().to_vec());
        let v3_signature = get(HEADER_SIGNATURE_V3);
        let v3_timestamp = get(HEADER_TIMESTAMP);
        if v3_signature.is_some() || v3_timestamp.is_some() {
            return Some(Claimed {
                version: SignatureVersion::V3,
                signature: v3_signature?,
                timestamp: v3_timestamp?,
            });
        }
        let version = match get(HEADER_SIGNATURE_VERSION)? {
            v if v.eq_ignore_ascii_case(b"v1") => SignatureVersion::V1,
            v if v.eq_ignore_ascii_case(b"v2") => SignatureVersion::V2,
            _ => return None,
        };
        Some(Claimed {
            version,
            signature: get(HEADER_SIGNATURE)?,
            timestamp: Vec::new(),
        })
    }

    /// The request as received, under each accepted secret (the normal check, not counted).
    pub(super) fn baseline(
        &mut self,
        claimed: &Claimed,
        expected: &[u8; 32],
        prefixes: &mut SignaturePrefixes,
    ) -> Option<SecretSlot> {
        let hashed = self.hashed_uri(claimed.version, self.request.uri);
        let mut matched = None;
        for (slot, secret) in self.secrets.iter() {
            let mac = compute(
                claimed.version,
                secret,
                self.request.method,
                &hashed,
                self.request.body,
                &claimed.timestamp,
            );
            prefixes
                .computed
                .push((slot, prefix_of(&encode(claimed.version, &mac))));
            if matched.is_none() && bool::from(mac.ct_eq(expected)) {
                matched = Some(slot);
            }
        }
        // The verifier also reads lower-case forms of the 12 escapes; so does the baseline.
        let any_case = uppercase_twelve(self.request.uri);
        if matched.is_none()
            && claimed.version == SignatureVersion::V3
            && any_case != self.request.uri
        {
            let hashed = selectively_decode_uri(&any_case).into_owned();
            for (slot, secret) in self.secrets.iter() {
                let mac = compute(
                    claimed.version,
                    secret,
                    self.request.method,
                    &hashed,
                    self.request.body,
                    &claimed.timestamp,
                );
                if bool::from(mac.ct_eq(expected)) {
                    matched = Some(slot);
                    break;
                }
            }
        }
        self.remember(&hashed, self.request.body, &claimed.timestamp);
        matched
    }

    pub(super) fn diagnose(&mut self, claimed: &Claimed, expected: &[u8; 32]) -> Option<Mangling> {
        let version = claimed.version;
        for kind in ManglingKind::ALL {
            if kind == ManglingKind::PlusAsSpace || !kind.applies_to(version) {
                continue;
            }
            if self.extra_macs >= MAX_EXTRA_MACS {
                self.skipped.push((kind, SkipReason::Budget));
                continue;
            }
            let candidates = match self.candidates(kind, claimed) {
                Ok(c) => c,
                Err(reason) => {
                    self.skipped.push((kind, reason));
                    continue;
                }
            };
            let secrets: Vec<(SecretSlot, &Secret)> = if kind == ManglingKind::WrongSecret {
                self.hints.other_secrets.clone()
            } else {
                self.secrets.iter().collect()
            };
            let mut exhausted = false;
            for candidate in candidates {
                let hashed_uri = candidate
                    .hashed_uri
                    .clone()
                    .unwrap_or_else(|| self.hashed_uri(version, self.request.uri));
                let body = candidate.body.as_deref().unwrap_or(self.request.body);
                let timestamp = candidate
                    .timestamp
                    .as_ref()
                    .map_or(claimed.timestamp.as_slice(), |t| t.as_bytes());
                // The same bytes again cannot match now if they did not before.
                if kind != ManglingKind::WrongSecret && !self.remember(&hashed_uri, body, timestamp)
                {
                    continue;
                }
                for &(slot, secret) in &secrets {
                    if self.extra_macs >= MAX_EXTRA_MACS {
                        exhausted = true;
                        break;
                    }
                    self.extra_macs += 1;
                    let mac = compute(
                        version,
                        secret,
                        self.request.method,
                        &hashed_uri,
                        body,
                        timestamp,
                    );
                    if bool::from(mac.ct_eq(expected)) {
                        return Some(Mangling {
                            kind,
                            slot,
                            detail: candidate.detail,
                        });
                    }
                }
                if exhausted {
                    break;
                }
            }
            if exhausted {
                self.skipped.push((kind, SkipReason::Budget));
            } else {
                self.checked.push(kind);
            }
        }
        None
    }

    /// Records a reading; false when it was already tried.
    pub(super) fn remember(&mut self, hashed_uri: &str, body: &[u8], timestamp: &[u8]) -> bool {
        let mut h = Sha256::new();
        for part in [hashed_uri.as_bytes(), body, timestamp] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        self.tried.insert(h.finalize().into())
    }

    pub(super) fn hashed_uri(&self, version: SignatureVersion, uri: &str) -> String {
        match version {
            SignatureVersion::V3 => selectively_decode_uri(uri).into_owned(),
            _ => uri.to_owned(),
        }
    }

    pub(super) fn candidates(
        &self,
        kind: ManglingKind,
        claimed: &Claimed,
    ) -> Result<Vec<Candidate>, SkipReason> {
        let body = self.request.body;
        match kind {
            ManglingKind::PlusAsSpace => Ok(Vec::new()),
            ManglingKind::WrongSecret => {
                if self.hints.other_secrets.is_empty() {
                    Err(SkipReason::NeedsOtherSecret)
                } else {
                    Ok(vec![Candidate {
                        detail: "the request as received".to_owned(),
                        hashed_uri: None,
                        body: None,
                        timestamp: None,
                    }])
                }
            }
            ManglingKind::JsonReserialised => Ok(json_forms(body)
                .into_iter()
                .map(|(form, bytes)| Candidate::body(form, bytes))
                .collect()),
            ManglingKind::BodyBase64Encoded => {
                let trimmed: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                Ok(match STANDARD.decode(&trimmed) {
                    Ok(decoded) if !body.is_empty() => {
                        vec![Candidate::body("the decoded body", decoded)]
                    }
                    _ => Vec::new(),
                })
            }
            ManglingKind::BodyBase64Decoded => Ok(if body.is_empty() {
                Vec::new()
            } else {
                vec![Candidate::body(
                    "the base64 of the body",
                    STANDARD.encode(body).into_bytes(),
                )]
            }),
            ManglingKind::TimestampAltered => Ok(timestamp_candidates(&claimed.timestamp)),
            uri_kind => self.uri_candidates(uri_kind, claimed.version),
        }
    }

    pub(super) fn uri_candidates(
        &self,
        kind: ManglingKind,
        version: SignatureVersion,
    ) -> Result<Vec<Candidate>, SkipReason> {
        let received = Url::parse(self.request.uri).ok_or(SkipReason::UriNotAbsolute)?;
        let refs: Vec<Url<'_>> = [self.hints.public_url, self.hints.host_url]
            .into_iter()
            .flatten()
            .filter_map(Url::parse)
            .collect();
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |detail: String, uri: String| out.push((detail, uri));
        match kind {
            ManglingKind::HostDiffers => {
                if self.hints.public_url.is_none() && self.hints.host_url.is_none() {
                    return Err(SkipReason::NeedsPublicUrl);
                }
                for r in &refs {
                    if !r.authority.eq_ignore_ascii_case(received.authority) {
                        push(
                            format!(
                                "HubSpot called {}, the verifier used {}",
                                r.authority, received.authority
                            ),
                            received.with_authority(r.authority),
                        );
                    }
                }
            }
            ManglingKind::SchemeChanged => {
                let other = if received.scheme == "https" {
                    "http"
                } else {
                    "https"
                };
                push(
                    format!(
                        "HubSpot called {other}, the verifier used {}",
                        received.scheme
                    ),
                    received.with_scheme(other),
                );
            }
            ManglingKind::StagePrefixAdded
            | ManglingKind::StagePrefixMissing
            | ManglingKind::MappingKeyMissing
            | ManglingKind::MappingKeyAdded => {
                let mapping = matches!(
                    kind,
                    ManglingKind::MappingKeyMissing | ManglingKind::MappingKeyAdded
                );
                if mapping && refs.is_empty() {
                    return Err(SkipReason::NeedsPublicUrl);
                }
                for r in &refs {
                    if let Some((found, prefix, path)) = prefix_difference(received.path, r.path)
                        && found_kind(found, &prefix, self.hints.stage) == kind
                    {
                        push(prefix, received.with_path(&path));
                    }
                }
                if !mapping {
                    self.stage_guesses(kind, &received, &mut push);
                }
            }
            ManglingKind::TrailingSlashAdded => {
                if received.path.len() > 1
                    && let Some(stripped) = received.path.strip_suffix('/')
                {
                    push(
                        format!("the verifier used {}", received.path),
                        received.with_path(stripped),
                    );
                }
            }
            ManglingKind::TrailingSlashRemoved if !received.path.ends_with('/') => {
                let slashed = format!("{}/", received.path);
                push(
                    format!("HubSpot called {slashed}"),
                    received.with_path(&slashed),
                );
            }
            ManglingKind::QueryReordered => {
                for order in query_orders(received.query, &refs) {
                    push(order.clone(), received.with_query(Some(&order)));
                }
            }
            ManglingKind::ContextParamsAppended => {
                for (removed, rest) in without_context(received.query) {
                    let query = (!rest.is_empty()).then_some(rest.as_str());
                    push(removed, received.with_query(query));
                }
            }
            ManglingKind::UriDecoded => {
                for (label, plus) in [("spaces as %20", false), ("spaces as +", true)] {
                    let path = encode_path(received.path);
                    let query = received.query.map(|q| encode_query(q, plus));
                    let uri = received.with_path_query(&path, query.as_deref());
                    push(format!("{uri} ({label})"), uri);
                }
            }
            ManglingKind::UriReEncoded => {
                for (label, uri) in re_encodings(self.request.uri, &received) {
                    push(label, uri);
                }
            }
            ManglingKind::ReservedEscapeDecoded => {
                for (escape, c) in TWELVE {
                    let path = if c == '/' {
                        received.path.to_owned()
                    } else {
                        received.path.replace(c, escape)
                    };
                    let query = received.query.map(|q| q.replace(c, escape));
                    let uri = received.with_path_query(&path, query.as_deref());
                    push(format!("HubSpot sent {escape}, the verifier saw {c}"), uri);
                }
            }
            ManglingKind::ReservedEscapeEncoded => {
                let mut out_v3 = Vec::new();
                for (escape, c) in TWELVE {
                    let lower = escape.to_ascii_lowercase();
                    let tail = &self.request.uri[received.head_len()..];
                    if !tail.contains(escape) && !tail.contains(&lower) {
                        continue;
                    }
                    let decoded = tail
                        .replace(escape, &c.to_string())
                        .replace(&lower, &c.to_string());
                    push(
                        format!("{c} was sent as is and arrived as {escape}"),
                        format!("{}{decoded}", &self.request.uri[..received.head_len()]),
                    );
                    if version == SignatureVersion::V3 && tail.contains(escape) {
                        out_v3.push(Candidate {
                            detail: format!(
                                "HubSpot left {escape} encoded in the string it signed (its table \
                                 says to decode it to {c})"
                            ),
                            hashed_uri: Some(decode_keeping(self.request.uri, escape)),
                            body: None,
                            timestamp: None,
                        });
                    }
                }
                let mut all = self.plain_uri_candidates(version, out);
                all.extend(out_v3);
                return Ok(all);
            }
            _ => {}
        }
        Ok(self.plain_uri_candidates(version, out))
    }

    pub(super) fn stage_guesses(
        &self,
        kind: ManglingKind,
        received: &Url<'_>,
        push: &mut impl FnMut(String, String),
    ) {
        match kind {
            ManglingKind::StagePrefixAdded => {
                let rest = received.path.get(1..).unwrap_or_default();
                if let Some((first, _)) = rest.split_once('/')
                    && is_stage(first, self.hints.stage)
                {
                    let path = &received.path[first.len() + 1..];
                    push(format!("/{first}"), received.with_path(path));
                }
            }
            ManglingKind::StagePrefixMissing => {
                let guesses: Vec<&str> = match self.hints.stage {
                    Some(stage) => vec![stage],
                    None => STAGE_GUESSES.to_vec(),
                };
                for stage in guesses {
                    if !received.path.starts_with(&format!("/{stage}/")) {
                        let path = format!("/{stage}{}", received.path);
                        push(format!("/{stage}"), received.with_path(&path));
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn plain_uri_candidates(
        &self,
        version: SignatureVersion,
        uris: Vec<(String, String)>,
    ) -> Vec<Candidate> {
        uris.into_iter()
            .filter(|(_, uri)| uri != self.request.uri)
            .map(|(detail, uri)| Candidate {
                detail,
                hashed_uri: Some(self.hashed_uri(version, &uri)),
                body: None,
                timestamp: None,
            })
            .collect()
    }
}
