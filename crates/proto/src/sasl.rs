//! SASL as ZooKeeper uses it, shared by the server and the client: the JAAS configuration
//! syntax both read their credentials from, and DIGEST-MD5's (RFC 2831) directives and digest.
//! ZooKeeper's DIGEST-MD5 uses the fixed realm and server name `zk-sasl-md5`, the service
//! `zookeeper` and `qop=auth` only.

use md5::{Digest, Md5};
use std::collections::HashMap;

/// The realm and server name ZooKeeper hard-codes for DIGEST-MD5.
pub const DIGEST_REALM: &str = "zk-sasl-md5";
/// The service of ZooKeeper's SASL principal.
pub const SERVICE: &str = "zookeeper";
/// The digest-uri every ZooKeeper DIGEST-MD5 exchange names.
pub const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// One login module entry of a JAAS section.
#[derive(Debug)]
pub struct JaasEntry {
    /// The login module's class name.
    pub module: String,
    /// Its options, in order (values unquoted).
    pub options: Vec<(String, String)>,
}

/// JAAS's configuration syntax: `Name { module flag key=value ... ; ... };`, with `//` and
/// `/* */` comments and quoted or bare values.
pub fn parse_jaas(text: &str) -> Result<HashMap<String, Vec<JaasEntry>>, String> {
    #[derive(Debug, PartialEq)]
    enum Tok {
        Word(String),
        Quoted(String),
        Sym(char),
    }
    let mut toks = Vec::new();
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if it.peek() == Some(&'/') => {
                for c in it.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if it.peek() == Some(&'*') => {
                it.next();
                let mut prev = ' ';
                loop {
                    match it.next() {
                        Some('/') if prev == '*' => break,
                        Some(c) => prev = c,
                        None => return Err("an unclosed comment".into()),
                    }
                }
            }
            '{' | '}' | ';' | '=' => toks.push(Tok::Sym(c)),
            '"' => {
                let mut s = String::new();
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => s.extend(it.next()),
                        Some(c) => s.push(c),
                        None => return Err("an unclosed quoted value".into()),
                    }
                }
                toks.push(Tok::Quoted(s));
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = it.peek() {
                    if n.is_whitespace() || "{};=\"".contains(n) {
                        break;
                    }
                    s.push(n);
                    it.next();
                }
                toks.push(Tok::Word(s));
            }
        }
    }
    let mut out: HashMap<String, Vec<JaasEntry>> = HashMap::new();
    let mut i = 0;
    let word = |t: Option<&Tok>| match t {
        Some(Tok::Word(w)) => Some(w.clone()),
        _ => None,
    };
    while i < toks.len() {
        let name = word(toks.get(i)).ok_or("expected a section name")?;
        if toks.get(i + 1) != Some(&Tok::Sym('{')) {
            return Err(format!("section {name}: expected '{{'"));
        }
        i += 2;
        let mut entries = Vec::new();
        while toks.get(i) != Some(&Tok::Sym('}')) {
            let module = word(toks.get(i)).ok_or(format!("section {name}: expected a module"))?;
            let _flag = word(toks.get(i + 1))
                .ok_or(format!("section {name}: {module}: expected a control flag"))?;
            i += 2;
            let mut options = Vec::new();
            while toks.get(i) != Some(&Tok::Sym(';')) {
                let key = word(toks.get(i)).ok_or(format!("section {name}: expected key=value"))?;
                if toks.get(i + 1) != Some(&Tok::Sym('=')) {
                    return Err(format!("section {name}: {key}: expected '='"));
                }
                let value = match toks.get(i + 2) {
                    Some(Tok::Quoted(v)) | Some(Tok::Word(v)) => v.clone(),
                    _ => return Err(format!("section {name}: {key}: expected a value")),
                };
                options.push((key, value));
                i += 3;
            }
            i += 1;
            entries.push(JaasEntry { module, options });
        }
        i += 1;
        if toks.get(i) == Some(&Tok::Sym(';')) {
            i += 1;
        }
        out.entry(name).or_default().extend(entries);
    }
    Ok(out)
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// MD5 of the parts, concatenated.
pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RFC 2831's directives: `key=value` or `key="value"`, comma separated.
pub fn directives(text: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("no '=' in {rest:?}"))?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next().map(|(_, c)| c)),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("unclosed quote in {key}"))?;
            (v, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        if out.insert(key.clone(), value).is_some() {
            return Err(format!("{key} given twice"));
        }
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(out)
}

/// What both sides of a DIGEST-MD5 exchange compute: the `response` a client sends (with
/// `a2_prefix` "AUTHENTICATE") and the `rspauth` the server answers (with "").
pub struct DigestInputs<'a> {
    pub user: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub nc: &'a str,
    pub qop: &'a str,
    pub uri: &'a str,
    pub authzid: Option<&'a str>,
}

impl DigestInputs<'_> {
    /// RFC 2831's `HEX(KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2))))`.
    pub fn digest(&self, a2_prefix: &str) -> String {
        let inner = md5(&[
            self.user.as_bytes(),
            b":",
            self.realm.as_bytes(),
            b":",
            self.password.as_bytes(),
        ]);
        let mut a1: Vec<&[u8]> = vec![
            &inner[..],
            b":",
            self.nonce.as_bytes(),
            b":",
            self.cnonce.as_bytes(),
        ];
        if let Some(z) = self.authzid {
            a1.extend([&b":"[..], z.as_bytes()]);
        }
        let ha1 = hex(&md5(&a1));
        let ha2 = hex(&md5(&[a2_prefix.as_bytes(), b":", self.uri.as_bytes()]));
        hex(&md5(&[
            ha1.as_bytes(),
            b":",
            self.nonce.as_bytes(),
            b":",
            self.nc.as_bytes(),
            b":",
            self.cnonce.as_bytes(),
            b":",
            self.qop.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]))
    }
}

/// A client's answer to a server's DIGEST-MD5 challenge, as ZooKeeper's Java client (and
/// kazoo's puresasl) sends it; `cnonce` is the client's random nonce.
pub fn digest_client_response(
    challenge: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Result<String, String> {
    digest_client(challenge, user, password, cnonce).map(|(response, _)| response)
}

/// The answer to a DIGEST-MD5 challenge, and the `rspauth` a server that knows the password
/// must send back (mutual authentication).
pub fn digest_client(
    challenge: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Result<(String, String), String> {
    let d = directives(challenge)?;
    let nonce = d.get("nonce").ok_or("the challenge has no nonce")?;
    let realm = d.get("realm").map(String::as_str).unwrap_or(DIGEST_REALM);
    if !d
        .get("qop")
        .is_none_or(|q| q.split(',').any(|q| q.trim() == "auth"))
    {
        return Err("the server does not offer qop=auth".into());
    }
    let inputs = DigestInputs {
        user,
        realm,
        password,
        nonce,
        cnonce,
        nc: "00000001",
        qop: "auth",
        uri: DIGEST_URI,
        authzid: None,
    };
    Ok((
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"{cnonce}\",digest-uri=\"{DIGEST_URI}\",maxbuf=65536,response={},qop=auth",
            inputs.digest("AUTHENTICATE")
        ),
        format!("rspauth={}", inputs.digest("")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 section 4's example: user chris, password secret, realm elwood.innosoft.com.
    #[test]
    fn the_rfcs_example() {
        let i = DigestInputs {
            user: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            qop: "auth",
            uri: "imap/elwood.innosoft.com",
            authzid: None,
        };
        assert_eq!(i.digest("AUTHENTICATE"), "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(i.digest(""), "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn jaas_syntax() {
        let s = parse_jaas(
            "// c\nServer { a.DigestLoginModule required user_x=\"p w\" /* c */ user_y=z; };",
        )
        .unwrap();
        assert_eq!(
            s["Server"][0].options,
            [
                ("user_x".into(), "p w".into()),
                ("user_y".into(), "z".into())
            ]
        );
        assert!(parse_jaas("Server { x required a=\"b ; };").is_err());
        assert_eq!(directives("a=1, b=\"x,y\"").unwrap()["b"], "x,y");
        assert!(directives("a=1,a=2").is_err());
    }
}
