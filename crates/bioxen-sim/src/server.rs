//! The simulator's network side: HTTP/1.1 (optionally over TLS) carrying XML-RPC on
//! `/` and every other path, and JSON-RPC 1.0/2.0 on `/jsonrpc`, with the exact
//! envelopes and content types of XAPI.md §1, plus injected faults.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::api::Sim;
use bioxen_backend::xapi::wire::{self, XVal};

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What a response looks like before it is written.
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

/// The header a client sends to learn the master's certificate with `HOST_IS_SLAVE`,
/// and the one that carries it back.
const THUMBPRINT_REQUEST: &str = "x-xenapi-request-host-certificate-thumbprint";
const THUMBPRINT_RESPONSE: &str = "x-xenapi-response-host-certificate-thumbprint";

impl Response {
    fn malformed(what: &str) -> Response {
        Response {
            status: 500,
            content_type: "text/html",
            body: format!(
                "<html><body><h1>HTTP 500 internal server error</h1>{}</body></html>",
                html_escape(what)
            ),
        }
    }
}

/// Serves connections from `listener` until `shutdown` turns true; open connections
/// close then too, as when a pool master goes down.
pub async fn serve(
    sim: Arc<Sim>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|down| *down) => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let sim = sim.clone();
        let tls = tls.clone();
        let mut down = shutdown.clone();
        tokio::spawn(async move {
            let serve = async {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            connection(sim, stream, peer).await;
                        }
                    }
                    None => connection(sim, stream, peer).await,
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = down.wait_for(|down| *down) => {}
            }
        });
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    sim: Arc<Sim>,
    stream: S,
    _peer: SocketAddr,
) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some((method, path, headers)) = read_head(&mut stream).await else {
            return;
        };
        let length: usize = header(&headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if length > MAX_BODY {
            return;
        }
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let close = header(&headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));

        // Faults, checked per request.
        let faults = sim.faults.lock().map(|f| f.clone()).unwrap_or_default();
        if !faults.latency.is_zero() {
            tokio::time::sleep(faults.latency).await;
        }
        if take(&sim, |f| &mut f.drop_next) {
            return;
        }
        let response = if take(&sim, |f| &mut f.http500_next) {
            Response::malformed("injected fault")
        } else if take(&sim, |f| &mut f.garbage_next) {
            Response {
                status: 200,
                content_type: "application/json",
                body: "\u{0}garbage{{{".into(),
            }
        } else if method == "OPTIONS" {
            Response {
                status: 200,
                content_type: "text/plain",
                body: String::new(),
            }
        } else if method == "GET" && (path == "/rrd_updates" || path.starts_with("/rrd_updates?")) {
            let query = path.split_once('?').map_or("", |(_, q)| q);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (status, body) = super::rrd::updates(&sim, query, now);
            Response {
                status,
                content_type: if status == 200 {
                    "application/json"
                } else {
                    "text/plain"
                },
                body,
            }
        } else if method != "POST" {
            Response::malformed("only POST is served")
        } else {
            let body = String::from_utf8_lossy(&body).into_owned();
            if path == "/jsonrpc" || path.starts_with("/jsonrpc?") {
                jsonrpc(&sim, &body).await
            } else {
                xmlrpc(&sim, &body).await
            }
        };
        // A member answers every login (and every call) with HOST_IS_SLAVE; asked for
        // it, it names its master's certificate, as xapi does.
        let thumbprint = match (header(&headers, THUMBPRINT_REQUEST), &sim.options) {
            (Some(want), o) if o.member_of.is_some() && want.ends_with(":master") => {
                o.master_thumbprint.as_deref()
            }
            _ => None,
        };
        if write_response(stream.get_mut(), &response, thumbprint)
            .await
            .is_err()
            || close
        {
            return;
        }
    }
}

/// Decrements a fault counter; returns whether it was set.
fn take(sim: &Sim, field: impl FnOnce(&mut super::api::Faults) -> &mut u32) -> bool {
    let Ok(mut f) = sim.faults.lock() else {
        return false;
    };
    let n = field(&mut f);
    if *n > 0 {
        *n -= 1;
        true
    } else {
        false
    }
}

async fn read_head<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
) -> Option<(String, String, Vec<(String, String)>)> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    let mut total = 0;
    loop {
        let mut h = String::new();
        let n = r.read_line(&mut h).await.ok()?;
        total += n;
        if n == 0 || total > 64 * 1024 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some((method, path, headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn write_response<W: AsyncWrite + Unpin>(
    w: &mut W,
    r: &Response,
    thumbprint: Option<&str>,
) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Internal Server Error",
    };
    let thumbprint = thumbprint
        .map(|t| format!("{THUMBPRINT_RESPONSE}: {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\n\
         access-control-allow-origin: *\r\naccess-control-allow-headers: X-Requested-With\r\n\
         {thumbprint}\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    w.write_all(head.as_bytes()).await?;
    w.write_all(r.body.as_bytes()).await?;
    w.flush().await
}

async fn xmlrpc(sim: &Arc<Sim>, body: &str) -> Response {
    let (method, params) = match wire::parse_method_call(body) {
        Ok(call) => call,
        Err(e) => return Response::malformed(&format!("Xmlrpc.Parse_error: {e}")),
    };
    let result = sim.call(&method, params).await;
    let body = match (&method[..], &result) {
        // system.listMethods is not wrapped in Status/Value.
        ("system.listMethods", Ok(v)) => wire::xmlrpc_bare_response(v),
        _ => wire::xmlrpc_response(&result),
    };
    Response {
        status: 200,
        content_type: "text/xml",
        body,
    }
}

async fn jsonrpc(sim: &Arc<Sim>, body: &str) -> Response {
    let Ok(request) = serde_json::from_str::<Json>(body) else {
        return Response::malformed("Jsonrpc.Malformed_method_request: not JSON");
    };
    let v2 = match request.get("jsonrpc") {
        None => false,
        Some(Json::String(v)) if v == "2.0" => true,
        Some(_) => {
            return Response::malformed("Jsonrpc.Malformed_method_request: bad jsonrpc version");
        }
    };
    let Some(method) = request.get("method").and_then(Json::as_str) else {
        return Response::malformed("Jsonrpc.Malformed_method_request: no method");
    };
    let id = match request.get("id") {
        Some(id @ (Json::Number(_) | Json::String(_))) => id.clone(),
        _ => {
            return Response::malformed(
                "Jsonrpc.Malformed_method_request: id must be an int or a string",
            );
        }
    };
    let params = match request.get("params") {
        Some(Json::Array(a)) => a.iter().map(XVal::from_json).collect(),
        None | Some(Json::Null) if v2 => Vec::new(),
        _ => {
            return Response::malformed(
                "Jsonrpc.Malformed_method_request: params must be an array",
            );
        }
    };
    let result = sim.call(method, params).await;
    let reply = match (v2, result) {
        (false, Ok(v)) => json!({"result": v.to_json(), "error": null, "id": id}),
        (false, Err(e)) => json!({"result": null, "error": e, "id": id}),
        (true, Ok(v)) => json!({"jsonrpc": "2.0", "result": v.to_json(), "id": id}),
        (true, Err(e)) if method == "system.listMethods" => {
            json!({"jsonrpc": "2.0", "error": e, "id": id})
        }
        (true, Err(e)) => json!({
            "jsonrpc": "2.0",
            "error": {"code": 1, "message": e.first().cloned().unwrap_or_default(), "data": e.get(1..).unwrap_or(&[])},
            "id": id
        }),
    };
    Response {
        status: 200,
        content_type: "application/json",
        body: reply.to_string(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
