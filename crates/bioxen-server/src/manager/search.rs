//! Searching every VM at once (`C-b /` in the dashboard): which VM printed NaN first?
//!
//! Each VM's history and screen are searched as lines, rows joined where they
//! soft-wrapped, so a match the terminal's width split in two is still found. The
//! screens are the server's own: nothing is sent to a client to be searched there.
//! Output older than a VM's scrollback is searched in its output log, when it has one.

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
            let (lines, (dropped, live)) = {
                let screen = lock(&session.screen);
                (screen.logical_lines(), screen.line_numbers())
            };
            let name = session.name();
            if dropped > 0 {
                let kept: Vec<&str> = lines.iter().take(3).map(|(_, t)| t.as_str()).collect();
                found.extend(self.search_log(&session, &matcher, &kept, left));
            }
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
                        logged_ms: None,
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

impl Manager {
    /// Matches in the session's output log older than `kept`, the first lines its
    /// scrollback still holds: the log is read as plain lines, and searched up to where
    /// those lines are found last.
    fn search_log(
        &self,
        session: &Session,
        matcher: &regex::Regex,
        kept: &[&str],
        limit: usize,
    ) -> Vec<SearchMatch> {
        let files = LogFiles::new(&self.inner.config.logs.dir, session.vm);
        let Ok(text) = files.read() else {
            return Vec::new();
        };
        let lines = text.plain_lines();
        let same = |at: usize| {
            kept.iter().enumerate().all(|(k, want)| {
                lines
                    .get(at + k)
                    .is_some_and(|(_, l)| l.trim_end() == *want)
            })
        };
        let cut = (0..lines.len())
            .rev()
            .find(|&at| same(at))
            .unwrap_or(lines.len());
        let name = session.name();
        let mut found = Vec::new();
        let mut before: Option<&str> = None;
        for (offset, line) in &lines[..cut] {
            if let Some(m) = matcher.find(line) {
                found.push(SearchMatch {
                    vm: session.vm,
                    name: name.clone(),
                    back: 0,
                    text: line.clone(),
                    start: line[..m.start()].chars().count(),
                    len: line[m.start()..m.end()].chars().count(),
                    context: before.map(str::to_string),
                    logged_ms: Some(text.time_of(*offset)),
                });
                if found.len() >= limit {
                    break;
                }
            }
            before = Some(line);
        }
        found
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
