//! Writing JSON text: the response body and subgraph request bodies are written as text, never
//! built as a tree first. Strings, most of an answer's bytes, go through [`write_str`], which
//! copies runs that need no escaping whole, eight bytes checked at a time.

/// Appends `value` as JSON text.
pub fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("strings and JSON values serialize into memory");
}

/// `value` as JSON text, for an error message.
/// Writes a JSON array of `items`, each JSON text already.
pub fn write_array<I: AsRef<[u8]>>(out: &mut Vec<u8>, items: &[I]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_ref());
    }
    out.push(b']');
}

pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("JSON values serialize")
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it: `"`, `\` and the control
/// characters, the common ones in their short forms.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean = 0; // bytes[clean..] up to the one being looked at need no escape, not written yet
    let escape_at = |out: &mut Vec<u8>, i: usize, clean: &mut usize| {
        let byte = bytes[i];
        if needs_escape(byte) {
            out.extend_from_slice(&bytes[*clean..i]);
            escape(out, byte);
            *clean = i + 1;
        }
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        if may_need_escape(word) {
            for i in at..at + 8 {
                escape_at(out, i, &mut clean);
            }
        }
        at += 8;
    }
    // The last bytes (all of a short string), checked as one word padded with clean bytes.
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [b'a'; 8];
        word[..rest.len()].copy_from_slice(rest);
        if may_need_escape(u64::from_le_bytes(word)) {
            for i in at..bytes.len() {
                escape_at(out, i, &mut clean);
            }
        }
    }
    out.extend_from_slice(&bytes[clean..]);
    out.push(b'"');
}

fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Whether any of the eight bytes of `word` may need escaping (never false when one does).
fn may_need_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20);
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_byte = |x: u64| x.wrapping_sub(ONES);
    ((below_space | zero_byte(quote) | zero_byte(backslash)) & !word & HIGH) != 0
}

fn escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain ascii, longer than eight bytes".into(),
            "quote \" backslash \\ in the middle of a long run".into(),
            "\"\\".into(),
            "tabs\tnew\nlines\rand\u{8}\u{c}\u{1}\u{1f}\u{7f}".into(),
            "Бургаско — unicode stays as it is, ünïcödé 🍺".into(),
        ];
        // Every byte value below 0x80 at every offset of a 17-byte string.
        for byte in 0u8..0x80 {
            for at in 0..17 {
                let mut s = vec![b'a'; 17];
                s[at] = byte;
                cases.push(String::from_utf8(s).expect("ascii"));
            }
        }
        for case in cases {
            let mut ours = Vec::new();
            write_str(&mut ours, &case);
            let theirs = serde_json::to_vec(&case).expect("serializes");
            assert_eq!(
                String::from_utf8(ours).expect("utf-8"),
                String::from_utf8(theirs).expect("utf-8"),
                "{case:?}"
            );
        }
    }
}
