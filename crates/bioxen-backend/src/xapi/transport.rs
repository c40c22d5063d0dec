//! JSON-RPC 2.0 over HTTP(S) `POST /jsonrpc`: one request, one reply, a timeout on
//! every call. Knows nothing of sessions.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::tls::{self, TlsMode};
use bioxen_config::DEFAULT_REPLY_LIMIT;
use bioxen_proto::XapiError;

/// Asks a pool member to name its master's certificate along with `HOST_IS_SLAVE`,
/// and the header it does so in (XAPI.md §4).
const THUMBPRINT_REQUEST: &str = "x-xenapi-request-host-certificate-thumbprint";
const THUMBPRINT_RESPONSE: &str = "x-xenapi-response-host-certificate-thumbprint";

pub struct Transport {
    /// Rebuilt when a pinned member hands over to its master (see `redirect_host`).
    http: Mutex<reqwest::Client>,
    /// Replies larger than this are refused while they arrive.
    reply_limit: AtomicU64,
    /// `https://host:port`; changes when a pool member redirects to its master.
    base: Mutex<String>,
    next_id: AtomicU64,
    tls: Mutex<TlsMode>,
    /// The master's certificate as a pinned pool member named it, for the redirect.
    master_pin: Mutex<Option<[u8; 32]>>,
}

/// An HTTP client that trusts what `tls_mode` says.
fn http_client(tls_mode: &TlsMode) -> Result<reqwest::Client, XapiError> {
    tls::install_default_provider();
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        // A pool has no business redirecting a login elsewhere: the request body
        // carries the password. Redirects are reported, never followed.
        .redirect(reqwest::redirect::Policy::none());
    let builder = match tls_mode {
        TlsMode::Verify => builder.tls_backend_rustls(),
        TlsMode::Pinned(pin) => builder.tls_backend_preconfigured(tls::pinned_config(*pin)),
        TlsMode::Insecure => builder
            .tls_backend_rustls()
            .tls_danger_accept_invalid_certs(true),
    };
    builder
        .build()
        .map_err(|e| XapiError::Config(format!("cannot set up HTTPS: {e}")))
}

impl Transport {
    pub fn new(base: &str, tls_mode: TlsMode) -> Result<Transport, XapiError> {
        Ok(Transport {
            http: Mutex::new(http_client(&tls_mode)?),
            reply_limit: AtomicU64::new(DEFAULT_REPLY_LIMIT as u64),
            base: Mutex::new(base.trim_end_matches('/').to_string()),
            next_id: AtomicU64::new(1),
            tls: Mutex::new(tls_mode),
            master_pin: Mutex::new(None),
        })
    }

    pub fn base(&self) -> String {
        crate::lock(&self.base).clone()
    }

    /// Points the transport at another host of the pool, same scheme and port. Under a
    /// pinned certificate, the new host must show the certificate the member named
    /// (the member's pinned certificate vouches for it); without one named, the old
    /// pin stays and a master with another certificate is refused.
    pub fn redirect_host(&self, host: &str) -> String {
        let named = crate::lock(&self.master_pin).take();
        let pinned = matches!(*crate::lock(&self.tls), TlsMode::Pinned(_));
        if let (true, Some(pin)) = (pinned, named) {
            match http_client(&TlsMode::Pinned(pin)) {
                Ok(client) => {
                    *crate::lock(&self.http) = client;
                    *crate::lock(&self.tls) = TlsMode::Pinned(pin);
                    tracing::info!(
                        "pinned the pool master's certificate {}, as the member named it",
                        format!("sha256:{}", tls::hex_pairs(&pin))
                    );
                }
                Err(e) => tracing::warn!("cannot pin the pool master's certificate: {e}"),
            }
        }
        let mut base = crate::lock(&self.base);
        let (scheme, rest) = base.split_once("://").unwrap_or(("https", &base));
        let port = rest.rsplit_once(':').map(|(_, p)| p.to_string());
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        *base = match port {
            Some(p) if p.chars().all(|c| c.is_ascii_digit()) => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        };
        base.clone()
    }

    pub fn tls_mode(&self) -> TlsMode {
        crate::lock(&self.tls).clone()
    }

    pub fn set_reply_limit(&self, bytes: usize) {
        self.reply_limit.store(bytes as u64, Ordering::Relaxed);
    }

    /// Calls `method`; the reply's `result`, or the pool's error.
    pub async fn call(
        &self,
        method: &str,
        params: Vec<Json>,
        timeout: Duration,
    ) -> Result<Json, XapiError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let url = format!("{}/jsonrpc", self.base());
        let http = crate::lock(&self.http).clone();
        let mut request = http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if method == "session.login_with_password" {
            request = request.header(THUMBPRINT_REQUEST, "sha-256:master");
        }
        let request = request.body(body.to_string()).send();
        let response = match tokio::time::timeout(timeout, request).await {
            Err(_) => {
                return Err(XapiError::Timeout(format!(
                    "{method} took longer than {}s",
                    timeout.as_secs_f64()
                )));
            }
            Ok(Err(e)) => return Err(self.describe(e).await),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        // A member telling us its master's certificate: kept for the redirect, and
        // used only if ours is pinned (see `redirect_host`).
        if let Some(named) = response
            .headers()
            .get(THUMBPRINT_RESPONSE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| tls::parse_fingerprint(v).ok())
        {
            *crate::lock(&self.master_pin) = Some(named);
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if status.is_redirection() {
            let target = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(bioxen_text::sanitize::line)
                .unwrap_or_else(|| "(no Location)".into());
            return Err(XapiError::Transport(format!(
                "{url} answered {method} with HTTP {status}, a redirect to {target}; bioxen does \
                 not follow redirects from a pool (the request carries the password). If that \
                 is your pool, set [xcpng] url to it"
            )));
        }
        let limit = self.reply_limit.load(Ordering::Relaxed) as usize;
        let body = match tokio::time::timeout(timeout, read_limited(response, limit)).await {
            Err(_) => {
                return Err(XapiError::Timeout(format!(
                    "reading the answer to {method}"
                )));
            }
            Ok(Err(ReadError::Http(e))) => {
                return Err(XapiError::Transport(format!("{url}: {e}")));
            }
            Ok(Err(ReadError::TooLarge)) => {
                return Err(XapiError::Transport(format!(
                    "{url} answered {method} with more than {} MiB; refused \
                     ([xcpng] reply_limit_mib raises the limit)",
                    limit >> 20
                )));
            }
            Ok(Ok(b)) => b,
        };
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(XapiError::Transport(format!(
                "{url} answered HTTP {status} to {method}"
            )));
        }
        if content_type != "application/json" {
            return Err(XapiError::Transport(format!(
                "{url} answered {method} with content-type {content_type:?}, not JSON-RPC"
            )));
        }
        let reply: Json = serde_json::from_str(&text).map_err(|e| {
            XapiError::Transport(format!("{url} answered {method} with invalid JSON: {e}"))
        })?;
        parse_reply(reply)
    }

    /// `GET path` (with its query) from the pool: the HTTP handlers beside JSON-RPC,
    /// such as `/rrd_updates`. The same trust, size limit and refusal of redirects.
    pub async fn get(&self, path: &str, timeout: Duration) -> Result<String, XapiError> {
        let what = path.split('?').next().unwrap_or(path).to_string();
        let http = crate::lock(&self.http).clone();
        let request = http.get(format!("{}{path}", self.base())).send();
        let response = match tokio::time::timeout(timeout, request).await {
            Err(_) => return Err(XapiError::Timeout(format!("GET {what}"))),
            Ok(Err(e)) => return Err(self.describe(e).await),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if !status.is_success() {
            return Err(XapiError::Transport(format!(
                "{} answered HTTP {status} to GET {what}",
                self.base()
            )));
        }
        let limit = self.reply_limit.load(Ordering::Relaxed) as usize;
        match tokio::time::timeout(timeout, read_limited(response, limit)).await {
            Err(_) => Err(XapiError::Timeout(format!("reading GET {what}"))),
            Ok(Err(ReadError::Http(e))) => Err(XapiError::Transport(format!("GET {what}: {e}"))),
            Ok(Err(ReadError::TooLarge)) => Err(XapiError::Transport(format!(
                "GET {what} answered more than {} MiB; refused",
                limit >> 20
            ))),
            Ok(Ok(body)) => Ok(String::from_utf8_lossy(&body).into_owned()),
        }
    }

    /// Turns an HTTP error into a message that says what to do about it.
    async fn describe(&self, e: reqwest::Error) -> XapiError {
        let chain = error_chain(&e);
        let tls_problem = [
            "certificate",
            "UnknownIssuer",
            "invalid peer",
            "fingerprint",
            "handshake",
        ]
        .iter()
        .any(|w| chain.contains(w));
        if !tls_problem {
            return XapiError::Transport(format!("{}: {chain}", self.base()));
        }
        if let TlsMode::Pinned(_) = self.tls_mode() {
            return XapiError::Tls(chain);
        }
        let base = self.base();
        let hostport = base
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&base)
            .to_string();
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse().unwrap_or(443),
            ),
            None => (hostport.clone(), 443),
        };
        let seen = tls::probe_fingerprint(&host, port).await;
        XapiError::Tls(match seen {
            Some(fp) => format!(
                "{base} presents a certificate that is not trusted ({chain}). If it is your pool's own \
                 self-signed certificate, pin it in [xcpng]: tls_fingerprint = \"{fp}\""
            ),
            None => format!("{base}: {chain}"),
        })
    }
}

enum ReadError {
    Http(reqwest::Error),
    TooLarge,
}

/// The body, read chunk by chunk and given up on as soon as it passes `limit`: an
/// endless or huge reply costs at most `limit` bytes of memory.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `result`, or the error in v2 (`{code, message, data}`) or v1 (`[CODE, …]`) form.
pub fn parse_reply(reply: Json) -> Result<Json, XapiError> {
    if let Some(err) = reply.get("error").filter(|e| !e.is_null()) {
        let as_strings = |v: &Json| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        return Err(match err {
            Json::Object(o) => XapiError::Api {
                code: o
                    .get("message")
                    .and_then(Json::as_str)
                    .unwrap_or("UNKNOWN")
                    .to_string(),
                params: o.get("data").map(as_strings).unwrap_or_default(),
            },
            Json::Array(_) => {
                let mut all = as_strings(err);
                let code = if all.is_empty() {
                    "UNKNOWN".to_string()
                } else {
                    all.remove(0)
                };
                XapiError::Api { code, params: all }
            }
            other => XapiError::Transport(format!("unexpected error value {other}")),
        });
    }
    reply
        .get("result")
        .cloned()
        .ok_or_else(|| XapiError::Transport("JSON-RPC reply without result or error".into()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
