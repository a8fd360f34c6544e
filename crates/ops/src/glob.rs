//! Shell-style `*` and `?` patterns, as ntpd matches interface names and nft include paths.

/// How a pattern is matched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Glob {
    /// ASCII case ignored (ntpd's interface names).
    pub(crate) ignore_case: bool,
    /// A byte that `*` and `?` never stand for (`/` in a path).
    pub(crate) separator: Option<u8>,
}

impl Glob {
    /// An interface name, in any case.
    pub(crate) const NAME: Self = Self { ignore_case: true, separator: None };
    /// A path: wildcards stay within one component.
    pub(crate) const PATH: Self = Self { ignore_case: false, separator: Some(b'/') };

    /// Whether `pattern` matches the whole of `text`.
    pub(crate) fn matches(self, pattern: &[u8], text: &[u8]) -> bool {
        let wild = |c: u8| Some(c) != self.separator;
        match (pattern.split_first(), text.split_first()) {
            (None, None) => true,
            (Some((b'*', rest)), _) => {
                self.matches(rest, text)
                    || text.first().is_some_and(|&c| wild(c) && self.matches(pattern, &text[1..]))
            }
            (Some((b'?', rest)), Some((&c, text_rest))) if wild(c) => self.matches(rest, text_rest),
            (Some((p, rest)), Some((c, text_rest)))
                if p == c || (self.ignore_case && p.eq_ignore_ascii_case(c)) =>
            {
                self.matches(rest, text_rest)
            }
            _ => false,
        }
    }
}
