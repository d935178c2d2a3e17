//! The identities a client certificate names: its subjectAltName DNS names, then its
//! subject's common names. The TLS layer has already verified the certificate against the
//! configured client CA; this only reads names out of it.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The names in `der` (a certificate), SAN DNS names first; empty when it does not parse.
pub fn names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(d) = name {
                out.push((*d).to_owned());
            }
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            out.push(s.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_read_san_first_then_common_name() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["wallet-api.example".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wallet-api");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            names(cert.der()),
            ["wallet-api.example".to_owned(), "wallet-api".to_owned()]
        );
        assert!(names(b"not a certificate").is_empty());
    }
}
