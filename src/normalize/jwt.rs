//! JSON Web Tokens as gateways log them (an `Authorization` header, a `token` field): the header
//! (`kid`, `alg`) and the claims (`sub`, `jti`, `iat`, `exp`) are what tie a request to a signing
//! key, a token and a subject. The signature is a secret-equivalent for replay and proves nothing
//! here, so it is never decoded, kept or written: [`redact`] removes it from any text that
//! reaches a report (rejected lines).

use std::borrow::Cow;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use regex::Regex;
use serde_json::Value;

/// The decoded header and claims of `token` (`Bearer ` prefix allowed), or `None` if it is not a
/// JWT with JSON-object header and claims.
pub fn decode(token: &str) -> Option<(Value, Value)> {
    let token = token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    let mut parts = token.split('.');
    let (header, claims) = (parts.next()?, parts.next()?);
    let part = |p: &str| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok()?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
    };
    Some((part(header)?, part(claims)?))
}

/// `text` with the signature of every JWT in it replaced by `<signature removed>`.
pub fn redact(text: &str) -> Cow<'_, str> {
    static JWT: OnceLock<Regex> = OnceLock::new();
    let re = JWT.get_or_init(|| {
        Regex::new(r"(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)\.[A-Za-z0-9_-]+")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}"))
    });
    re.replace_all(text, "$1.<signature removed>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJlLWJ5dGVz",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn header_and_claims_are_read_and_the_signature_never_is() {
        let t = token(
            r#"{"alg":"RS256","kid":"signing-2023"}"#,
            r#"{"sub":"c-1001","jti":"t-9","iat":1740000000,"exp":1740003600}"#,
        );
        let (h, c) = decode(&format!("Bearer {t}")).expect("a JWT");
        assert_eq!(
            (h["kid"].as_str(), c["jti"].as_str()),
            (Some("signing-2023"), Some("t-9"))
        );
        assert!(decode("not.a.jwt").is_none());
        assert!(decode("eyJhbGciOiJub25lIn0").is_none());
        let line = format!(r#"{{"authorization":"Bearer {t}","status":200}}"#);
        let clean = redact(&line);
        assert!(!clean.contains("c2lnbmF0dXJlLWJ5dGVz"), "{clean}");
        assert!(clean.contains(".<signature removed>"), "{clean}");
    }
}
