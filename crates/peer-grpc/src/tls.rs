//! Cluster certificates: one CA per cluster and one certificate per node whose subject
//! alternative name `node-<id>.tessera` carries the node's party id. Both ends of a peer
//! connection present theirs (mutual TLS, rustls): the server checks the client's chain
//! against the cluster CA and then maps its name to a configured party id; the client checks
//! the server's chain and that its name is the peer it dialled.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, ServerName};
use service_core::peer::PartyId;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// What went wrong making or reading cluster certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Certificate generation failed.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A party id outside `1..=255`.
    #[error("party id {0} is out of range (1 to 255)")]
    PartyId(u32),
}

/// The DNS name in node `id`'s certificate.
pub fn node_name(id: PartyId) -> String {
    format!("node-{id}.tessera")
}

/// A node's certificate and private key, PEM-encoded.
#[derive(Clone)]
pub struct NodeCert {
    /// The node's party id.
    pub id: PartyId,
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PEM, PKCS#8). Secret.
    pub key_pem: String,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCert")
            .field("id", &self.id)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A new cluster: its CA certificate (PEM) and every node's certificate.
#[derive(Debug)]
pub struct ClusterCerts {
    /// The CA certificate (PEM). Its private key is not kept: no further node certificate can
    /// be issued for this cluster.
    pub ca_pem: String,
    /// One certificate per node, ids `1..=parties`.
    pub nodes: Vec<NodeCert>,
}

/// Makes a CA and certificates for nodes `1..=parties` (ECDSA P-256). The CA's private key
/// is dropped once the node certificates are signed.
pub fn generate_cluster(parties: u16) -> Result<ClusterCerts, TlsError> {
    if parties == 0 || parties > 255 {
        return Err(TlsError::PartyId(u32::from(parties)));
    }
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Tessera cluster CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let mut nodes = Vec::with_capacity(usize::from(parties));
    for id in 1..=parties {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(vec![node_name(id)])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node_name(id));
        p.distinguished_name = dn;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &issuer)?;
        nodes.push(NodeCert {
            id,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        });
    }
    Ok(ClusterCerts {
        ca_pem: ca_cert.pem(),
        nodes,
    })
}

/// A node's TLS material as read from its files.
#[derive(Clone)]
pub struct NodeTls {
    /// The cluster CA certificate (PEM).
    pub ca_pem: Vec<u8>,
    /// This node's certificate (PEM).
    pub cert_pem: Vec<u8>,
    /// This node's private key (PEM). Secret.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// The peer server's TLS: this node's identity, and client certificates required and
    /// checked against the cluster CA.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .client_auth_optional(false)
    }

    /// The client TLS for dialling party `peer`: the server must present the cluster CA's
    /// certificate for `node-<peer>.tessera`; this node presents its own.
    pub fn client(&self, peer: PartyId) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(node_name(peer))
    }
}

/// The party id a (CA-verified) peer certificate names, among `configured`: exactly one must
/// match, else `None`.
pub fn party_of(cert: &CertificateDer<'_>, configured: &[PartyId]) -> Option<PartyId> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    let mut found = configured.iter().copied().filter(|id| {
        ServerName::try_from(node_name(*id))
            .ok()
            .is_some_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn each_node_certificate_names_exactly_its_party() {
        let c = generate_cluster(3).unwrap();
        assert!(c.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        for n in &c.nodes {
            assert!(n.key_pem.contains("PRIVATE KEY"));
            let d = der(&n.cert_pem);
            assert_eq!(party_of(&d, &[1, 2, 3]), Some(n.id));
            let others: Vec<PartyId> = [1, 2, 3].into_iter().filter(|i| *i != n.id).collect();
            assert_eq!(party_of(&d, &others), None, "an unconfigured id is refused");
        }
        assert!(!format!("{:?}", c.nodes[0]).contains("PRIVATE"));
    }

    #[test]
    fn party_counts_out_of_range_are_refused() {
        assert!(generate_cluster(0).is_err());
        assert!(generate_cluster(256).is_err());
    }
}
