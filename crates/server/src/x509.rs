//! x509 identities: a TLS client's certificate subject as the `x509` ACL id, written exactly as
//! Java's `X500Principal.getName()` (RFC 2253) writes it, so ACLs that Java clients set, and
//! ZooKeeper's X509AuthenticationProvider checks, match here.
//!
//! Java's rules, kept: the RDNs in reverse order of the certificate's sequence, joined by `,`;
//! the attributes of a multi-valued RDN joined by `+`, in their order; RFC 2253's keywords (CN,
//! C, L, ST, O, OU, STREET, DC, UID) for their types, and the dotted OID with `#` and the hex of
//! the value's DER for any other type (emailAddress among them) or a value that is not a
//! string; in string values each of `,=+<>#;"\` escaped with `\`, and leading and trailing
//! spaces too.

use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::AttributeTypeAndValue;

/// The RFC 2253 keyword of an attribute type, as Java knows them.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// The value as text, for the string types Java reads as text.
fn text(tag: u32, data: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, GeneralString
        12 | 19 | 22 | 27 => std::str::from_utf8(data).ok().map(str::to_owned),
        // T61String: Java reads it as ISO-8859-1.
        20 => Some(data.iter().map(|&b| b as char).collect()),
        // BMPString: UTF-16BE.
        30 => {
            let pairs = data.chunks_exact(2);
            if !pairs.remainder().is_empty() {
                return None;
            }
            let units: Vec<u16> = pairs.map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// `#` and the hex of the value's DER (tag, length, contents).
fn hex_der(tag: u32, data: &[u8]) -> String {
    let mut der = vec![tag as u8];
    let n = data.len();
    if n < 0x80 {
        der.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(data);
    let mut out = String::from("#");
    for b in der {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn escape(v: &str) -> String {
    const SPECIAL: &str = ",=+<>#;\"\\";
    let chars: Vec<char> = v.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = chars.len() - chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        if SPECIAL.contains(*c) || i < lead || i >= trail.max(lead) {
            out.push('\\');
        }
        if *c == '\0' {
            out.push_str("00");
        } else {
            out.push(*c);
        }
    }
    out
}

fn attribute(a: &AttributeTypeAndValue<'_>) -> String {
    let oid = a.attr_type().to_id_string();
    let value = a.attr_value();
    let tag = value.header.tag().0;
    match (keyword(&oid), text(tag, value.data)) {
        (Some(k), Some(t)) => format!("{k}={}", escape(&t)),
        (Some(k), None) => format!("{k}={}", hex_der(tag, value.data)),
        (None, _) => format!("{oid}={}", hex_der(tag, value.data)),
    }
}

/// The subject of a DER certificate as Java's `X500Principal.getName()` prints it.
pub fn subject_rfc2253(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_java_does() {
        assert_eq!(escape("Acme, Inc."), "Acme\\, Inc.");
        assert_eq!(escape(" lead#"), "\\ lead\\#");
        assert_eq!(escape("trail "), "trail\\ ");
        assert_eq!(escape("a=b+c<d>e;\"f\\"), "a\\=b\\+c\\<d\\>e\\;\\\"f\\\\");
        assert_eq!(hex_der(22, b"a@b"), "#1603614062");
    }
}
