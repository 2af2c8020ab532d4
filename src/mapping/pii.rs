//! Normalised SHA-256 hashes of personal data, matching Braze's Currents field transformations
//! so hashed identities still join across tools.

use sha2::{Digest, Sha256};

fn sha256_hex(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// Email: trimmed and lower-cased before hashing.
pub(crate) fn hash_email(email: &str) -> String {
    sha256_hex(&email.trim().to_lowercase())
}

/// Phone: the digits of its E.164 form (`+1 (555) 010-0199` → `15550100199`) before hashing.
pub(crate) fn hash_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    sha256_hex(&digits)
}

/// Free text (user agents, inbound SMS bodies): trimmed, case kept, since case is content.
pub(crate) fn hash_text(text: &str) -> String {
    sha256_hex(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_sha256_values_after_normalising() {
        // sha256("test@example.com")
        let expected = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b";
        assert_eq!(hash_email("  Test@Example.COM "), expected);
        // sha256("15550100199")
        let phone = "90be998a6e4b5bec4f18e14bc56a618ba6dd57100b89276067e3a77ff7140b4a";
        assert_eq!(hash_phone("+1 (555) 010-0199"), phone);
        assert_eq!(hash_phone("15550100199"), phone);
        // sha256("abc")
        assert_eq!(
            hash_text(" abc "),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
