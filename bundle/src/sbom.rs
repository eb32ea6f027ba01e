//! The SBOMs: CycloneDX 1.6 JSON and SPDX 2.3 JSON, one component or
//! package per store path, made from [`crate::collect::Component`]s.
//!
//! Both are deterministic: the timestamp is the latest end time of the
//! roots' builds (the epoch when no record exists), and the serial number /
//! document namespace derive from the roots and NAR hashes.

use std::collections::BTreeMap;

use kiln_store::{StoreDir, StorePath};
use serde_json::{Value, json};

use crate::BundleError;
use crate::collect::{Component, License};

/// Inputs common to both SBOMs.
pub struct SbomInput<'a> {
    pub store_dir: &'a StoreDir,
    pub roots: &'a [StorePath],
    pub components: &'a [Component],
    pub timestamp: i64,
}

/// A name-based UUID (version 5 layout) from bytes.
fn uuid(seed: &[u8]) -> String {
    let h = crate::sha256_hex(seed);
    let mut b: Vec<u8> = hex::decode(&h[..32]).expect("hex");
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn seed(input: &SbomInput) -> Vec<u8> {
    let mut s = String::new();
    for r in input.roots {
        s += &format!("root {}\n", input.store_dir.display(r));
    }
    for c in input.components {
        s += &format!("{} {}\n", input.store_dir.display(&c.path), c.nar_sha256);
    }
    s.into_bytes()
}

/// Percent-encode a purl segment.
fn purl_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `pkg:nix/NAME@VERSION?hash=HASHPART`: stable per store path.
pub fn purl(c: &Component) -> String {
    let mut p = format!("pkg:nix/{}", purl_escape(&c.name));
    if let Some(v) = &c.version {
        p += &format!("@{}", purl_escape(v));
    }
    p + &format!("?hash={}", c.path.hash_part())
}

fn cdx_component(dir: &StoreDir, c: &Component) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert(
        "type".into(),
        if c.is_root { "application" } else { "library" }.into(),
    );
    obj.insert("bom-ref".into(), dir.display(&c.path).into());
    obj.insert("name".into(), c.name.clone().into());
    if let Some(v) = &c.version {
        obj.insert("version".into(), v.clone().into());
    }
    if let Some(d) = &c.description {
        obj.insert("description".into(), d.clone().into());
    }
    if c.build_only {
        obj.insert("scope".into(), "excluded".into());
    }
    obj.insert(
        "hashes".into(),
        json!([{"alg": "SHA-256", "content": c.nar_sha256}]),
    );
    if !c.licenses.is_empty() {
        let list: Vec<Value> = c
            .licenses
            .iter()
            .map(|l| match l {
                License::Spdx(id) => json!({"license": {"id": id}}),
                License::Named(name) => json!({"license": {"name": name}}),
            })
            .collect();
        obj.insert("licenses".into(), list.into());
    }
    obj.insert("purl".into(), purl(c).into());
    let mut refs: Vec<Value> = c
        .sources
        .iter()
        .map(|s| {
            json!({"type": "source-distribution", "url": s.url, "hashes": [{"alg": cdx_alg(&s.algo), "content": s.hex}]})
        })
        .collect();
    if let Some(h) = &c.homepage {
        refs.push(json!({"type": "website", "url": h}));
    }
    if !refs.is_empty() {
        obj.insert("externalReferences".into(), refs.into());
    }
    let mut props = vec![
        json!({"name": "nix:store_path", "value": dir.display(&c.path)}),
        json!({"name": "nix:narinfo:nar_hash", "value": format!("sha256:{}", c.nar_sha256)}),
        json!({"name": "nix:narinfo:nar_size", "value": c.nar_size.to_string()}),
    ];
    if let Some(d) = &c.deriver {
        props.push(json!({"name": "nix:narinfo:deriver", "value": dir.display(d)}));
    }
    props.push(
        json!({"name": "kiln:dependency", "value": if c.build_only { "build" } else { "runtime" }}),
    );
    obj.insert("properties".into(), props.into());
    Value::Object(obj)
}

fn cdx_alg(algo: &str) -> &'static str {
    match algo {
        "md5" => "MD5",
        "sha1" => "SHA-1",
        "sha512" => "SHA-512",
        _ => "SHA-256",
    }
}

/// The CycloneDX 1.6 document.
pub fn cyclonedx(input: &SbomInput) -> Value {
    let dir = input.store_dir;
    let single_root = input.roots.len() == 1;
    let (meta_component, listed): (Value, Vec<&Component>) = if single_root {
        let root = input.components.iter().find(|c| c.path == input.roots[0]);
        (
            root.map(|c| cdx_component(dir, c)).unwrap_or(Value::Null),
            input
                .components
                .iter()
                .filter(|c| c.path != input.roots[0])
                .collect(),
        )
    } else {
        (
            json!({"type": "application", "bom-ref": "kiln-bundle", "name": "kiln-bundle"}),
            input.components.iter().collect(),
        )
    };
    let mut deps: Vec<Value> = Vec::new();
    if !single_root {
        deps.push(json!({
            "ref": "kiln-bundle",
            "dependsOn": input.roots.iter().map(|r| dir.display(r)).collect::<Vec<_>>(),
        }));
    }
    for c in input.components {
        let mut on: Vec<String> = c.references.iter().map(|r| dir.display(r)).collect();
        on.extend(c.build_inputs.iter().map(|r| dir.display(r)));
        on.sort();
        on.dedup();
        deps.push(json!({"ref": dir.display(&c.path), "dependsOn": on}));
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid(&seed(input))),
        "version": 1,
        "metadata": {
            "timestamp": crate::time::rfc3339(input.timestamp),
            "tools": {"components": [{"type": "application", "name": "kiln", "version": kiln_builder::record::KILN_VERSION}]},
            "component": meta_component,
        },
        "components": listed.iter().map(|c| cdx_component(dir, c)).collect::<Vec<_>>(),
        "dependencies": deps,
    })
}

fn spdx_id(path: &StorePath) -> String {
    format!("SPDXRef-{}", path.hash_part())
}

fn license_ref(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("LicenseRef-{clean}")
}

/// The SPDX 2.3 document.
pub fn spdx(input: &SbomInput) -> Value {
    let dir = input.store_dir;
    let mut extracted: BTreeMap<String, String> = BTreeMap::new();
    let mut packages = Vec::new();
    let mut relationships = Vec::new();
    for r in input.roots {
        relationships.push(json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": spdx_id(r)}));
    }
    for c in input.components {
        let mut p = serde_json::Map::new();
        p.insert("SPDXID".into(), spdx_id(&c.path).into());
        p.insert("name".into(), c.name.clone().into());
        if let Some(v) = &c.version {
            p.insert("versionInfo".into(), v.clone().into());
        }
        p.insert(
            "downloadLocation".into(),
            c.sources
                .first()
                .map(|s| s.url.clone())
                .unwrap_or_else(|| "NOASSERTION".into())
                .into(),
        );
        p.insert("filesAnalyzed".into(), false.into());
        p.insert(
            "checksums".into(),
            json!([{"algorithm": "SHA256", "checksumValue": c.nar_sha256}]),
        );
        if let Some(h) = &c.homepage {
            p.insert("homepage".into(), h.clone().into());
        }
        if !c.sources.is_empty() {
            let text: Vec<String> = c
                .sources
                .iter()
                .map(|s| format!("{} ({} {})", s.url, s.algo, s.hex))
                .collect();
            p.insert(
                "sourceInfo".into(),
                format!("built from {}", text.join(", ")).into(),
            );
        }
        p.insert("licenseConcluded".into(), "NOASSERTION".into());
        let ids: Vec<String> = c
            .licenses
            .iter()
            .map(|l| match l {
                License::Spdx(id) => id.clone(),
                License::Named(name) => {
                    let id = license_ref(name);
                    extracted.insert(id.clone(), name.clone());
                    id
                }
            })
            .collect();
        let declared = match ids.len() {
            0 => "NOASSERTION".to_string(),
            1 => ids[0].clone(),
            _ => format!("({})", ids.join(" AND ")),
        };
        p.insert("licenseDeclared".into(), declared.into());
        p.insert("copyrightText".into(), "NOASSERTION".into());
        if let Some(d) = &c.description {
            p.insert("description".into(), d.clone().into());
        }
        p.insert(
            "primaryPackagePurpose".into(),
            if c.is_root { "APPLICATION" } else { "LIBRARY" }.into(),
        );
        p.insert(
            "externalRefs".into(),
            json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl(c)}]),
        );
        let mut comment = format!("nix:store_path {}", dir.display(&c.path));
        if c.build_only {
            comment += "; build-time dependency";
        }
        p.insert("comment".into(), comment.into());
        packages.push(Value::Object(p));
        for r in &c.references {
            relationships.push(json!({"spdxElementId": spdx_id(&c.path), "relationshipType": "DEPENDS_ON", "relatedSpdxElement": spdx_id(r)}));
        }
        for b in &c.build_inputs {
            relationships.push(json!({"spdxElementId": spdx_id(b), "relationshipType": "BUILD_DEPENDENCY_OF", "relatedSpdxElement": spdx_id(&c.path)}));
        }
    }
    let names: Vec<&str> = input.roots.iter().map(|r| r.name()).collect();
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("kiln-bundle {}", names.join(" ")),
        "documentNamespace": format!("https://kiln.dev/spdx/{}", uuid(&seed(input))),
        "creationInfo": {
            "created": crate::time::rfc3339(input.timestamp),
            "creators": [format!("Tool: kiln-{}", kiln_builder::record::KILN_VERSION)],
        },
        "documentDescribes": input.roots.iter().map(spdx_id).collect::<Vec<_>>(),
        "packages": packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = extracted
            .iter()
            .map(|(id, name)| json!({"licenseId": id, "extractedText": format!("The license named {name:?} in the package's meta."), "name": name}))
            .collect::<Vec<_>>()
            .into();
    }
    doc
}

/// Check that a CycloneDX SBOM lists exactly `expected` (printed path →
/// NAR sha256), with those hashes.
pub fn check_cyclonedx(
    bytes: &[u8],
    expected: &BTreeMap<String, String>,
) -> Result<(), BundleError> {
    let bad = |why: String| BundleError::invalid(format!("{}: {why}", crate::SBOM_CDX));
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON ({e})")))?;
    if v.get("bomFormat").and_then(Value::as_str) != Some("CycloneDX")
        || v.get("specVersion").and_then(Value::as_str) != Some("1.6")
    {
        return Err(bad("not a CycloneDX 1.6 BOM".into()));
    }
    let mut found = BTreeMap::new();
    let meta = v.pointer("/metadata/component").into_iter();
    let listed = v
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for c in meta.chain(listed) {
        let Some(r) = c.get("bom-ref").and_then(Value::as_str) else {
            continue;
        };
        if r == "kiln-bundle" {
            continue;
        }
        let hash = c
            .pointer("/hashes/0/content")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{r} has no hash")))?;
        found.insert(r.to_string(), hash.to_string());
    }
    compare(&found, expected).map_err(bad)
}

/// The same for an SPDX SBOM (packages by their `nix:store_path` comment).
pub fn check_spdx(bytes: &[u8], expected: &BTreeMap<String, String>) -> Result<(), BundleError> {
    let bad = |why: String| BundleError::invalid(format!("{}: {why}", crate::SBOM_SPDX));
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON ({e})")))?;
    if v.get("spdxVersion").and_then(Value::as_str) != Some("SPDX-2.3") {
        return Err(bad("not an SPDX 2.3 document".into()));
    }
    let mut found = BTreeMap::new();
    for p in v
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let path = p
            .get("comment")
            .and_then(Value::as_str)
            .and_then(|c| c.strip_prefix("nix:store_path "))
            .map(|c| c.split(';').next().unwrap_or(c))
            .ok_or_else(|| bad("a package names no store path".into()))?;
        let hash = p
            .pointer("/checksums/0/checksumValue")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{path} has no checksum")))?;
        found.insert(path.to_string(), hash.to_string());
    }
    compare(&found, expected).map_err(bad)
}

fn compare(
    found: &BTreeMap<String, String>,
    expected: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (path, hash) in expected {
        match found.get(path) {
            None => return Err(format!("{path} is missing")),
            Some(h) if h != hash => {
                return Err(format!("{path} has hash {h}, the manifest says {hash}"));
            }
            _ => {}
        }
    }
    if let Some(extra) = found.keys().find(|p| !expected.contains_key(*p)) {
        return Err(format!("{extra} is not in the manifest"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_have_the_version_5_layout() {
        let u = super::uuid(b"x");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "5");
        assert!("89ab".contains(&u[19..20]));
    }
}
