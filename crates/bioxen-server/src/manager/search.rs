//! Searching every VM at once (`C-b /` in the dashboard): which VM printed NaN first?
//!
//! Each VM's history and screen are searched as lines, rows joined where they
//! soft-wrapped, so a match the terminal's width split in two is still found. The
//! screens are the server's own: nothing is sent to a client to be searched there.

use bioxen_proto::{SearchMatch, SearchQuery};

use super::*;

impl Manager {
    /// The lines of every VM that match, VM by VM in creation order, each VM's oldest
    /// first, at most `query.limit`. Case is ignored unless the query has capitals.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<SearchMatch>> {
        let matcher = matcher(query)?;
        let sessions: Vec<Arc<Session>> = lock(&self.inner.sessions).clone();
        let mut found = Vec::new();
        for session in sessions {
            let left = query.limit.saturating_sub(found.len());
            if left == 0 {
                break;
            }
            let (lines, live) = {
                let screen = lock(&session.screen);
                (screen.logical_lines(), screen.line_numbers().1)
            };
            let name = session.name();
            let mut before: Option<&str> = None;
            for (number, text) in &lines {
                if let Some(m) = matcher.find(text) {
                    found.push(SearchMatch {
                        vm: session.vm,
                        name: name.clone(),
                        back: live as i64 - *number as i64,
                        text: text.clone(),
                        start: text[..m.start()].chars().count(),
                        len: text[m.start()..m.end()].chars().count(),
                        context: before.map(str::to_string),
                    });
                    if found.len() >= query.limit {
                        break;
                    }
                }
                before = Some(text);
            }
        }
        Ok(found)
    }
}

/// The query as a regular expression: plain text escaped, case folded unless it has
/// capitals (as in the scrollback search and vim's smartcase).
fn matcher(query: &SearchQuery) -> Result<regex::Regex> {
    let pattern = match query.regex {
        true => query.text.clone(),
        false => regex::escape(&query.text),
    };
    let fold = !query.text.chars().any(char::is_uppercase);
    regex::RegexBuilder::new(&pattern)
        .case_insensitive(fold)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| Error::Manager(format!("not a regular expression: {e}")))
}
