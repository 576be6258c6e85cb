//! Computing and comparing MACs, and reading and writing signatures, for the diagnoser.

use super::*;

pub(super) fn compute(
    version: SignatureVersion,
    secret: &Secret,
    method: &str,
    hashed_uri: &str,
    body: &[u8],
    timestamp: &[u8],
) -> [u8; 32] {
    match version {
        SignatureVersion::V1 => Sha256::new()
            .chain_update(secret.expose().as_bytes())
            .chain_update(body)
            .finalize()
            .into(),
        SignatureVersion::V2 => Sha256::new()
            .chain_update(secret.expose().as_bytes())
            .chain_update(method.as_bytes())
            .chain_update(hashed_uri.as_bytes())
            .chain_update(body)
            .finalize()
            .into(),
        SignatureVersion::V3 => {
            let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(secret.expose().as_bytes())
            else {
                // Unreachable: HMAC takes keys of any length.
                return [0; 32];
            };
            mac.update(method.as_bytes());
            mac.update(hashed_uri.as_bytes());
            mac.update(body);
            mac.update(timestamp);
            mac.finalize().into_bytes().into()
        }
    }
}

/// The signature as received, a space read as `+` (v3).
pub(super) fn normalise_signature(claimed: &Claimed) -> String {
    let text = String::from_utf8_lossy(&claimed.signature);
    if claimed.version == SignatureVersion::V3 {
        text.replace(' ', "+")
    } else {
        text.into_owned()
    }
}

pub(super) fn decode_signature(version: SignatureVersion, raw: &[u8]) -> Option<[u8; 32]> {
    match version {
        SignatureVersion::V3 => {
            if raw.len() != 44 {
                return None;
            }
            let text: Vec<u8> = raw
                .iter()
                .map(|&b| if b == b' ' { b'+' } else { b })
                .collect();
            let mut buf = [0u8; 35];
            let len = STANDARD.decode_slice(&text, &mut buf).ok()?;
            <[u8; 32]>::try_from(buf.get(..len)?).ok()
        }
        _ => {
            if raw.len() != 64 {
                return None;
            }
            let mut out = [0u8; 32];
            for (byte, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
                let [hi, lo] = pair else { return None };
                *byte = (hex_value(*hi)? << 4) | hex_value(*lo)?;
            }
            Some(out)
        }
    }
}

pub(super) fn encode(version: SignatureVersion, mac: &[u8; 32]) -> String {
    match version {
        SignatureVersion::V3 => STANDARD.encode(mac),
        _ => mac.iter().map(|b| format!("{b:02x}")).collect(),
    }
}
