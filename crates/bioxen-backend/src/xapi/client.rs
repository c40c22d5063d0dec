//! A logged-in connection to a pool, and the typed calls bioxen makes.
//!
//! Sessions are kept alive here: `SESSION_INVALID` logs in again once and retries;
//! `HOST_IS_SLAVE` follows the pool member to its master (same scheme and port);
//! `SESSION_AUTHENTICATION_FAILED` is reported and never retried. Read-only calls are
//! retried with backoff when the network fails; calls that change things are not, so
//! nothing is done twice.

use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::Mutex;

use super::tls::TlsMode;
use super::transport::Transport;
use bioxen_config::XcpngConfig;
use bioxen_proto::XapiError;

/// Time allowed for an ordinary call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time an `event.from` long-poll gets beyond its own timeout.
const EVENT_MARGIN: Duration = Duration::from_secs(15);
/// Tries of a read-only call when the network fails.
const READ_TRIES: u32 = 3;

/// Credentials and address of a pool. The password never appears in `Debug`.
#[derive(Clone)]
pub struct Login {
    pub url: String,
    pub username: String,
    pub password: String,
    pub tls: TlsMode,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("tls", &self.tls)
            .finish()
    }
}

impl Login {
    /// Reads the password from `password_env`, `password_command` (run without a shell)
    /// or `password`, in that order.
    pub fn from_config(config: &XcpngConfig) -> Result<Login, XapiError> {
        let password = bioxen_config::secret::PasswordSource {
            section: "[xcpng]",
            env: config.password_env.as_deref(),
            command: config.password_command.as_deref(),
            literal: config.password.as_ref().map(|p| p.expose()),
            timeout: std::time::Duration::from_secs(config.password_timeout_secs),
        }
        .resolve()
        .map_err(XapiError::Config)?
        .ok_or_else(|| {
            XapiError::Config(
                "[xcpng] needs a password: set password_env, password_command or password".into(),
            )
        })?;
        let tls = TlsMode::from_config(config.tls_verify, &config.tls_fingerprint)
            .map_err(|e| XapiError::Config(e.to_string()))?;
        Ok(Login {
            url: config.url.clone(),
            username: config.username.clone(),
            password,
            tls,
        })
    }
}

pub struct XapiClient {
    transport: Transport,
    login: Login,
    session: Mutex<Option<String>>,
}

impl XapiClient {
    pub fn new(login: Login) -> Result<XapiClient, XapiError> {
        Ok(XapiClient {
            transport: Transport::new(&login.url, login.tls.clone())?,
            login,
            session: Mutex::new(None),
        })
    }

    /// A client for the configured pool: its login, TLS trust and reply limit.
    pub fn from_config(config: &XcpngConfig) -> Result<XapiClient, XapiError> {
        let client = XapiClient::new(Login::from_config(config)?)?;
        client.set_reply_limit((config.reply_limit_mib as usize).saturating_mul(1 << 20));
        Ok(client)
    }

    /// Replies larger than `bytes` are refused as they arrive.
    pub fn set_reply_limit(&self, bytes: usize) {
        self.transport.set_reply_limit(bytes);
    }

    /// The URL calls go to now (after any redirect to the master).
    pub fn url(&self) -> String {
        self.transport.base()
    }

    /// How the pool's certificate is trusted now (a pin may follow the master).
    pub fn tls_mode(&self) -> TlsMode {
        self.transport.tls_mode()
    }

    /// Logs in (following a pool member to its master) and returns the session.
    pub async fn connect(&self) -> Result<String, XapiError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let session = self.login().await?;
        *guard = Some(session.clone());
        Ok(session)
    }

    async fn login(&self) -> Result<String, XapiError> {
        let mut redirects = 0;
        loop {
            let params = vec![
                json!(self.login.username),
                json!(self.login.password),
                json!("1.1"),
                json!("bioxen"),
            ];
            match self
                .transport
                .call("session.login_with_password", params, CALL_TIMEOUT)
                .await
            {
                Ok(Json::String(s)) => return Ok(s),
                Ok(other) => {
                    return Err(XapiError::Transport(format!(
                        "login returned {other}, not a session"
                    )));
                }
                Err(XapiError::Api { code, params })
                    if code == "HOST_IS_SLAVE" && redirects < 3 =>
                {
                    let master = params.first().cloned().unwrap_or_default();
                    let url = self.transport.redirect_host(&master);
                    tracing::info!("pool member redirected to its master at {url}");
                    redirects += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Calls a method that takes the session first; logs in again once if the session
    /// expired.
    pub async fn call(&self, method: &str, args: Vec<Json>) -> Result<Json, XapiError> {
        self.call_with_timeout(method, args, CALL_TIMEOUT).await
    }

    async fn call_with_timeout(
        &self,
        method: &str,
        args: Vec<Json>,
        timeout: Duration,
    ) -> Result<Json, XapiError> {
        let session = self.connect().await?;
        let with_session = |s: &str| {
            std::iter::once(json!(s))
                .chain(args.iter().cloned())
                .collect::<Vec<_>>()
        };
        match self
            .transport
            .call(method, with_session(&session), timeout)
            .await
        {
            Err(e) if e.is("SESSION_INVALID") => {
                tracing::info!("XAPI session expired; logging in again");
                {
                    let mut guard = self.session.lock().await;
                    if guard.as_deref() == Some(session.as_str()) {
                        *guard = None;
                    }
                }
                let session = self.connect().await?;
                self.transport
                    .call(method, with_session(&session), timeout)
                    .await
            }
            other => other,
        }
    }

    /// The pool's figures since `start` (Unix seconds) at five-second steps, as Xen
    /// Orchestra asks for them (XAPI.md, "Metrics"). An expired session is renewed
    /// once, as for calls.
    pub async fn rrd_updates(&self, start: u64) -> Result<super::rrd::RrdUpdate, XapiError> {
        let get = |session: String| async move {
            let path = format!(
                "/rrd_updates?session_id={}&start={start}&cf=AVERAGE&interval=5&host=true&json=true",
                super::rrd::query_value(&session)
            );
            self.transport.get(&path, CALL_TIMEOUT).await
        };
        let session = self.connect().await?;
        let text = match get(session.clone()).await {
            Err(XapiError::Transport(e)) if e.contains("HTTP 401") || e.contains("HTTP 403") => {
                {
                    let mut guard = self.session.lock().await;
                    if guard.as_deref() == Some(session.as_str()) {
                        *guard = None;
                    }
                }
                get(self.connect().await?).await?
            }
            other => other?,
        };
        super::rrd::parse(&text)
    }

    /// A call that only reads: retried with backoff when the network fails.
    pub async fn read(&self, method: &str, args: Vec<Json>) -> Result<Json, XapiError> {
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match self.call(method, args.clone()).await {
                Err(e) if e.is_transient() && attempt < READ_TRIES => {
                    tracing::debug!("{method} failed ({e}); retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Ends the session (best effort).
    pub async fn logout(&self) {
        let session = self.session.lock().await.take();
        if let Some(s) = session {
            let _ = self
                .transport
                .call("session.logout", vec![json!(s)], Duration::from_secs(5))
                .await;
        }
    }

    /// Forgets the session without logging out (after the pool restarted).
    pub async fn reset_session(&self) {
        *self.session.lock().await = None;
    }

    // ----- typed calls -----------------------------------------------------------------

    pub async fn get_all_records(
        &self,
        class: &str,
    ) -> Result<serde_json::Map<String, Json>, XapiError> {
        match self
            .read(&format!("{class}.get_all_records"), vec![])
            .await?
        {
            Json::Object(m) => Ok(m),
            other => Err(unexpected(&format!("{class}.get_all_records"), &other)),
        }
    }

    pub async fn get_record(&self, class: &str, reference: &str) -> Result<Json, XapiError> {
        self.read(&format!("{class}.get_record"), vec![json!(reference)])
            .await
    }

    pub async fn vm_by_name(&self, name: &str) -> Result<Vec<String>, XapiError> {
        let v = self.read("VM.get_by_name_label", vec![json!(name)]).await?;
        Ok(strings(&v))
    }

    pub async fn event_inject(&self, class: &str, reference: &str) -> Result<String, XapiError> {
        let v = self
            .call("event.inject", vec![json!(class), json!(reference)])
            .await?;
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| unexpected("event.inject", &v))
    }

    /// Long-polls for changes in `classes` after `token`, waiting up to `timeout`.
    pub async fn event_from(
        &self,
        classes: &[&str],
        token: &str,
        timeout: f64,
    ) -> Result<Json, XapiError> {
        self.call_with_timeout(
            "event.from",
            vec![json!(classes), json!(token), json!(timeout)],
            Duration::from_secs_f64(timeout) + EVENT_MARGIN,
        )
        .await
    }
}

pub fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn unexpected(method: &str, v: &Json) -> XapiError {
    XapiError::Transport(format!("{method} returned an unexpected value: {v}"))
}
