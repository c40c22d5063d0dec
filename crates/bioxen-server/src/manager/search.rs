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
            let (all, (dropped, live)) = {
                let screen = lock(&session.screen);
                (screen.logical_text(), screen.line_numbers())
            };
            let name = session.name();
            if dropped > 0 {
                let kept: Vec<&str> = (0..all.lines.len().min(3))
                    .map(|i| line_of(&all, i))
                    .collect();
                found.extend(self.search_log(&session, &matcher, &kept, left));
            }
            // One pass over the VM's whole text; a match is mapped to its line after,
            // and a line is listed once, at its first match.
            let mut last_line = None;
            for m in matcher.find_iter(&all.text) {
                if all.text[m.start()..m.end()].contains('\n') {
                    continue;
                }
                let i = all.lines.partition_point(|l| l.0 <= m.start()) - 1;
                if last_line.replace(i) == Some(i) {
                    continue;
                }
                let (start, number) = all.lines[i];
                let text = line_of(&all, i);
                found.push(SearchMatch {
                    vm: session.vm,
                    name: name.clone(),
                    back: live as i64 - number as i64,
                    text: text.to_string(),
                    start: all.text[start..m.start()].chars().count(),
                    len: all.text[m.start()..m.end()].chars().count(),
                    context: i.checked_sub(1).map(|p| line_of(&all, p).to_string()),
                    logged_ms: None,
                });
                if found.len() >= query.limit {
                    break;
                }
            }
        }
        Ok(found)
    }

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

/// Line `i` of `all`, without its newline.
fn line_of(all: &bioxen_term::LogicalText, i: usize) -> &str {
    let start = all.lines[i].0;
    let end = all.lines.get(i + 1).map_or(all.text.len(), |l| l.0) - 1;
    &all.text[start..end]
}

/// The query as a regular expression: plain text escaped, case folded unless it has
/// capitals (as in the scrollback search and vim's smartcase); `^` and `$` match at
/// each line, as they did when lines were searched one by one.
fn matcher(query: &SearchQuery) -> Result<regex::Regex> {
    let pattern = match query.regex {
        true => query.text.clone(),
        false => regex::escape(&query.text),
    };
    let fold = !query.text.chars().any(char::is_uppercase);
    regex::RegexBuilder::new(&pattern)
        .case_insensitive(fold)
        .multi_line(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| Error::Manager(format!("not a regular expression: {e}")))
}
