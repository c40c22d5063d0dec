//! `execute_string`: run a piece of Lua in a VM's interactive interpreter and return
//! exactly that code's output.
//!
//! The code is sent as one line that prints invisible OSC markers around its output.
//! In the source the markers are spelled with `\27` and `\7` escapes, so the echo of the
//! typed line can never be mistaken for them: only the running code emits the real
//! ESC/BEL bytes. No fixed sleep decides where output ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use memchr::memmem;

use super::{Live, Session};
use bioxen_backend::error::{Error, Result};
use bioxen_proto::ExecResult;
use bioxen_text::lua_literal;

pub(super) async fn run(
    session: &Arc<Session>,
    code: &str,
    chunk_name: &str,
    timeout: Duration,
) -> Result<ExecResult> {
    let nonce = nonce();
    let markers = Markers::new(&nonce);
    let line = wrap(code, chunk_name, &nonce);
    let mut live = session.live.subscribe();
    let mut state = session.state.subscribe();
    session.send(line.as_bytes())?;

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(result) = markers.parse(&seen) {
            return Ok(result);
        }
        tokio::select! {
            chunk = live.recv() => match chunk {
                Ok(Live::Output(bytes)) => seen.extend_from_slice(&bytes),
                Ok(Live::Resized(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    return Err(Error::session(session.name(), format!(
                        "output of the executed code came faster than it could be read ({n} chunks lost)"
                    )));
                }
                Err(_) => return Err(Error::session(session.name(), "output closed")),
            },
            _ = state.wait_for(|s| !s.is_alive()) => {
                // Take what the process printed before it went.
                while let Ok(live) = live.try_recv() {
                    if let Live::Output(bytes) = live {
                        seen.extend_from_slice(&bytes);
                    }
                }
                if let Some(result) = markers.parse(&seen) {
                    return Ok(result);
                }
                return Err(Error::session(session.name(), format!(
                    "ended while executing code: {}",
                    session.state().label()
                )));
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Error::Timeout {
                    id: session.name(),
                    what: "waiting for executed code to finish".into(),
                    seconds: timeout.as_secs_f64(),
                });
            }
        }
    }
}

struct Markers {
    start: Vec<u8>,
    end: Vec<u8>,
    done: Vec<u8>,
}

impl Markers {
    fn new(nonce: &str) -> Self {
        let m = |tag: &str| format!("\x1b]777;bioxen;{tag};{nonce}\x07").into_bytes();
        Markers {
            start: m("S"),
            end: m("E"),
            done: m("Z"),
        }
    }

    fn parse(&self, seen: &[u8]) -> Option<ExecResult> {
        let s = memmem::find(seen, &self.start)? + self.start.len();
        let e = s + memmem::find(&seen[s..], &self.end)?;
        let z_from = e + self.end.len();
        let z = z_from + memmem::find(&seen[z_from..], &self.done)?;
        let output = normalize(&seen[s..e]);
        let error = normalize(&seen[z_from..z]);
        Some(ExecResult {
            output,
            error: (!error.is_empty()).then_some(error),
        })
    }
}

fn normalize(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}{:x}", std::process::id(), t, n)
}

/// The single line typed into the REPL. Like the interactive interpreter it first
/// tries the code as an expression (so `1 + 1` prints `2`), then as statements.
fn wrap(code: &str, chunk_name: &str, nonce: &str) -> String {
    let code = lua_literal::quote(code);
    let name = lua_literal::quote(chunk_name);
    format!(
        "do local c, e = load(\"return \" .. {code}, {name}) \
         if not c then c, e = load({code}, {name}) end \
         io.write(\"\\27]777;bioxen;S;{nonce}\\7\") io.stdout:flush() \
         local err if c then \
         local r = table.pack(xpcall(c, debug and debug.traceback or tostring)) \
         if r[1] then if r.n > 1 then print(table.unpack(r, 2, r.n)) end \
         else err = tostring(r[2]) end \
         else err = e end io.stdout:flush() \
         io.write(\"\\27]777;bioxen;E;{nonce}\\7\", err or \"\", \"\\27]777;bioxen;Z;{nonce}\\7\") \
         io.stdout:flush() end\r"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_of_the_line_is_not_a_marker() {
        let line = wrap("print(1)", "=x", "n1");
        let m = Markers::new("n1");
        assert!(memmem::find(line.as_bytes(), &m.start).is_none());
        assert!(m.parse(line.as_bytes()).is_none());
    }

    #[test]
    fn parses_output_and_error_between_markers() {
        let m = Markers::new("n2");
        let mut seen = b"echo\r\n".to_vec();
        seen.extend_from_slice(&m.start);
        seen.extend_from_slice(b"hi\r\n");
        seen.extend_from_slice(&m.end);
        seen.extend_from_slice(b"x:1: boom");
        assert!(m.parse(&seen).is_none());
        seen.extend_from_slice(&m.done);
        let r = m.parse(&seen).unwrap();
        assert_eq!(r.output, "hi\n");
        assert_eq!(r.error.as_deref(), Some("x:1: boom"));
    }
}
