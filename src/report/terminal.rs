//! Text bound for a terminal (the stdout table, warnings on stderr). Ids and reasons come from
//! attacker-controlled log fields: an ESC or BEL in one would be obeyed by the terminal (move the
//! cursor, rewrite earlier lines, set the title), and a bidirectional override would reorder
//! what is shown. Such characters are written as visible escapes instead.

use std::borrow::Cow;

/// `text` with control and bidirectional-formatting characters escaped (`\u{1b}`).
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_reach_the_terminal_only_as_text() {
        assert_eq!(safe("key-1"), "key-1");
        assert_eq!(safe("a\u{1b}]0;pwned\u{7}b"), "a\\u{1b}]0;pwned\\u{7}b");
        assert_eq!(safe("x\u{202e}y\r\n"), "x\\u{202e}y\\u{d}\\u{a}");
    }
}
