//! The lab's certificate authority: a root CA made fresh for every lab and
//! SPIFFE workload certificates signed by it, the way istiod's CA (Citadel)
//! issues them to each pod's istio-agent.
//!
//! What Istio issues (istio/istio `security/pkg/pki/util/generate_cert.go`,
//! `security/pkg/server/ca`): a self-signed root with `O=cluster.local`, and
//! per-workload leaf certificates whose only identity is a URI SAN
//! `spiffe://cluster.local/ns/<namespace>/sa/<service account>`, an empty
//! subject, key usages digitalSignature + keyEncipherment and extended key
//! usages serverAuth + clientAuth, valid for 24 hours. The sidecar gets the
//! leaf + key as the SDS secret `default` and the root as `ROOTCA`.
//!
//! Nothing is read from or written to disk here; the envoy module writes the
//! PEMs where a sidecar needs them.

use anyhow::{anyhow, Context};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::collections::HashMap;
use std::sync::Mutex;

/// The SPIFFE trust domain Istio uses by default (`meshConfig.trustDomain`).
pub const TRUST_DOMAIN: &str = "cluster.local";

/// `spiffe://cluster.local/ns/<ns>/sa/<sa>`: the identity Istio puts in a
/// workload certificate (istio/istio `pkg/spiffe/spiffe.go`).
pub fn spiffe_id(namespace: &str, service_account: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}")
}

/// A lab CA. Cheap to share (`&Pki` across threads): issued certificates are
/// cached per (namespace, service account).
pub struct Pki {
    root: Certificate,
    root_key: KeyPair,
    root_pem: String,
    issued: Mutex<HashMap<(String, String), (String, String)>>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

impl Pki {
    /// Make a new root CA (ECDSA P-256, valid ten years from an hour ago).
    pub fn new() -> anyhow::Result<Pki> {
        let root_key = KeyPair::generate().context("generating the lab root key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, TRUST_DOMAIN);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(3650);
        let root = params
            .self_signed(&root_key)
            .context("self-signing the lab root")?;
        let root_pem = root.pem();
        Ok(Pki {
            root,
            root_key,
            root_pem,
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// The root certificate (what Envoy gets as the `ROOTCA` secret).
    pub fn root_pem(&self) -> String {
        self.root_pem.clone()
    }

    /// The certificate chain (leaf then root, as istio-agent serves it) and
    /// the PKCS#8 private key for a workload identity. Issued once per
    /// (namespace, service account) and cached.
    pub fn workload(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> anyhow::Result<(String, String)> {
        let key = (namespace.to_string(), service_account.to_string());
        let mut issued = self
            .issued
            .lock()
            .map_err(|_| anyhow!("pki cache poisoned"))?;
        if let Some(found) = issued.get(&key) {
            return Ok(found.clone());
        }
        let leaf_key = KeyPair::generate().context("generating a workload key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        let uri = spiffe_id(namespace, service_account);
        params.subject_alt_names = vec![SanType::URI(
            uri.clone()
                .try_into()
                .map_err(|e| anyhow!("SAN {uri}: {e:?}"))?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::hours(24);
        let cert = params
            .signed_by(&leaf_key, &self.root, &self.root_key)
            .with_context(|| format!("signing the certificate for {uri}"))?;
        let chain = format!("{}{}", cert.pem(), self.root_pem);
        let out = (chain, leaf_key.serialize_pem());
        issued.insert(key, out.clone());
        Ok(out)
    }
}

/// Standard base64 (RFC 4648, with padding): how Envoy's config dump shows
/// `inline_bytes` and how istio-agent ships SDS secrets.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode standard base64 (padding optional); None on any other character.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "-----BEGIN CERTIFICATE-----\n",
        ] {
            assert_eq!(base64_decode(&base64(s.as_bytes())).unwrap(), s.as_bytes());
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 section 10 test vectors.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn workload_certs_are_cached_and_chain_to_the_root() {
        let pki = Pki::new().unwrap();
        let (chain, key) = pki.workload("foo", "httpbin").unwrap();
        assert_eq!(
            pki.workload("foo", "httpbin").unwrap(),
            (chain.clone(), key.clone())
        );
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(chain.ends_with(&pki.root_pem()));
        assert!(key.contains("PRIVATE KEY"));
        assert_ne!(pki.workload("foo", "sleep").unwrap().0, chain);
        assert_eq!(
            spiffe_id("foo", "httpbin"),
            "spiffe://cluster.local/ns/foo/sa/httpbin"
        );
    }
}
