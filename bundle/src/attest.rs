//! Attestations: in-toto Statement v1 in DSSE envelopes signed with
//! ed25519 over the DSSE pre-authentication encoding.
//!
//! - [`provenance_statement`]: subjects are the roots (name = store path,
//!   digest = NAR sha256), the predicate SLSA Provenance v1.
//! - [`crate::reproduce`] makes a Verification Summary (VSA v1) the same way.
//!
//! An envelope is `{"payload": base64, "payloadType":
//! "application/vnd.in-toto+json", "signatures": [{"keyid", "sig"}]}`, the
//! `keyid` being the name of the Nix-format key (`NAME:BASE64`), so a
//! verifier finds the trusted public key of that name.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kiln_store::signing::{SecretKey, TrustedKeys};
use serde_json::{Value, json};

use crate::BundleError;

pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PROVENANCE_TYPE: &str = "https://slsa.dev/provenance/v1";
pub const VSA_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// kiln's SLSA build type: a Nix-style derivation built in kiln's sandbox.
pub const BUILD_TYPE: &str = "https://kiln.dev/slsa/build-types/derivation/v1";

/// DSSE's pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An envelope of `payload`, signed by `key` (none: unsigned, with an
/// empty signature list).
pub fn envelope(payload: &[u8], key: Option<&SecretKey>) -> Value {
    let signatures: Vec<Value> = key
        .map(|key| {
            let sig = key.sign_raw(&pae(PAYLOAD_TYPE, payload));
            json!({"keyid": key.name(), "sig": STANDARD.encode(sig)})
        })
        .into_iter()
        .collect();
    json!({
        "payload": STANDARD.encode(payload),
        "payloadType": PAYLOAD_TYPE,
        "signatures": signatures,
    })
}

/// What checking an envelope found.
#[derive(Debug, Clone)]
pub struct Opened {
    pub payload: Vec<u8>,
    /// Names of the trusted keys whose signature verified.
    pub signers: Vec<String>,
    /// Key ids of signatures by keys not trusted here.
    pub unknown: Vec<String>,
}

/// Parse an envelope and check its signatures against `trusted`. A
/// signature by a trusted key that does not verify is always an error (the
/// payload or signature was changed); `require` also demands at least one
/// trusted signature.
pub fn open_envelope(
    what: &str,
    bytes: &[u8],
    trusted: &TrustedKeys,
    require: bool,
) -> Result<Opened, BundleError> {
    let bad = |why: &str| BundleError::invalid(format!("{what}: {why}"));
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| bad(&format!("not JSON ({e})")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| bad("not a DSSE envelope"))?;
    if obj.get("payloadType").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err(bad(&format!("payloadType is not {PAYLOAD_TYPE}")));
    }
    let payload = obj
        .get("payload")
        .and_then(Value::as_str)
        .and_then(|p| STANDARD.decode(p).ok())
        .ok_or_else(|| bad("the payload is not base64"))?;
    let sigs = obj
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no signatures list"))?;
    let message = pae(PAYLOAD_TYPE, &payload);
    let mut opened = Opened {
        payload,
        signers: Vec::new(),
        unknown: Vec::new(),
    };
    for sig in sigs {
        let keyid = sig
            .get("keyid")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a signature has no keyid"))?;
        let raw = sig
            .get("sig")
            .and_then(Value::as_str)
            .and_then(|s| STANDARD.decode(s).ok())
            .ok_or_else(|| bad(&format!("the signature by {keyid} is not base64")))?;
        let keys: Vec<_> = trusted
            .keys()
            .iter()
            .filter(|k| k.name() == keyid)
            .collect();
        if keys.is_empty() {
            opened.unknown.push(keyid.to_string());
        } else if keys.iter().any(|k| k.verify_raw(&message, &raw)) {
            opened.signers.push(keyid.to_string());
        } else {
            return Err(BundleError::Untrusted(format!(
                "{what}: the signature by {keyid} does not match: the bundle was changed after it was signed"
            )));
        }
    }
    if require && opened.signers.is_empty() {
        return Err(BundleError::Untrusted(if opened.unknown.is_empty() {
            format!(
                "{what} is not signed; pass --no-check-sigs to accept an unsigned bundle (its contents are still checked against its own digests)"
            )
        } else {
            format!(
                "{what} is signed by {}, which is not a trusted key; pass it with --key PUB (or add it to the trusted keys file), or --no-check-sigs to skip the signature check",
                opened.unknown.join(", ")
            )
        }));
    }
    Ok(opened)
}

/// A resource descriptor `{name, digest: {sha256}}`.
pub fn descriptor(name: &str, sha256_hex: &str) -> Value {
    json!({"name": name, "digest": {"sha256": sha256_hex}})
}

/// What a provenance statement says about how the roots were built.
pub struct ProvenanceInput {
    /// (printed path, NAR sha256 hex) of every root.
    pub subjects: Vec<(String, String)>,
    pub external_parameters: Value,
    pub internal_parameters: Value,
    /// (printed path, NAR sha256 hex) of every build input.
    pub resolved: Vec<(String, String)>,
    pub builder_id: String,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub invocation_id: String,
    /// (entry name, sha256 hex) of the manifest and the SBOMs.
    pub byproducts: Vec<(String, String)>,
}

pub fn provenance_statement(p: &ProvenanceInput) -> Value {
    let mut metadata = serde_json::Map::new();
    metadata.insert("invocationId".into(), p.invocation_id.clone().into());
    if let Some(t) = p.started {
        metadata.insert("startedOn".into(), crate::time::rfc3339(t).into());
    }
    if let Some(t) = p.finished {
        metadata.insert("finishedOn".into(), crate::time::rfc3339(t).into());
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": p.subjects.iter().map(|(n, d)| descriptor(n, d)).collect::<Vec<_>>(),
        "predicateType": PROVENANCE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": p.external_parameters,
                "internalParameters": p.internal_parameters,
                "resolvedDependencies": p.resolved.iter().map(|(n, d)| descriptor(n, d)).collect::<Vec<_>>(),
            },
            "runDetails": {
                "builder": {
                    "id": p.builder_id,
                    "version": {"kiln": kiln_builder::record::KILN_VERSION},
                },
                "metadata": metadata,
                "byproducts": p.byproducts.iter().map(|(n, d)| {
                    let mut v = descriptor(n, d);
                    v["mediaType"] = media_type(n).into();
                    v
                }).collect::<Vec<_>>(),
            },
        },
    })
}

fn media_type(entry: &str) -> &'static str {
    match entry {
        crate::SBOM_CDX => "application/vnd.cyclonedx+json",
        crate::SBOM_SPDX => "application/spdx+json",
        _ => "application/json",
    }
}

/// (name, sha256) pairs of a list of resource descriptors.
pub fn descriptors(value: Option<&Value>) -> Option<Vec<(String, String)>> {
    value?
        .as_array()?
        .iter()
        .map(|d| {
            Some((
                d.get("name")?.as_str()?.to_string(),
                d.get("digest")?.get("sha256")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_dsse_s() {
        // The example of DSSE's protocol.md.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn signed_envelopes_open_and_changes_are_caught() {
        let key = SecretKey::from_seed("k-1", &[3; 32]);
        let trusted = TrustedKeys::new(vec![key.public()]);
        let env = envelope(b"{\"a\":1}", Some(&key));
        let bytes = serde_json::to_vec(&env).unwrap();
        let opened = open_envelope("p", &bytes, &trusted, true).unwrap();
        assert_eq!(opened.signers, ["k-1"]);
        assert_eq!(opened.payload, b"{\"a\":1}");
        let mut changed = env.clone();
        changed["payload"] = STANDARD.encode(b"{\"a\":2}").into();
        let bytes = serde_json::to_vec(&changed).unwrap();
        assert!(matches!(
            open_envelope("p", &bytes, &trusted, false),
            Err(BundleError::Untrusted(_))
        ));
        // Unsigned or by an unknown key: refused only when required.
        let unsigned = serde_json::to_vec(&envelope(b"x", None)).unwrap();
        assert!(open_envelope("p", &unsigned, &trusted, true).is_err());
        assert!(open_envelope("p", &unsigned, &trusted, false).is_ok());
        let other = SecretKey::from_seed("other", &[4; 32]);
        let by_other = serde_json::to_vec(&envelope(b"x", Some(&other))).unwrap();
        let err = open_envelope("p", &by_other, &trusted, true).unwrap_err();
        assert!(err.to_string().contains("not a trusted key"), "{err}");
    }
}
