//! The simulator on the wire, checked with the literal requests and replies of
//! docs/XAPI.md: both transports, both JSON-RPC versions, errors included.

use std::net::SocketAddr;

use bioxen::sim::{SimOptions, SimServer};
use serde_json::{Value, json};

async fn sim() -> SimServer {
    bioxen::xapi::tls::install_default_provider();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    SimServer::start(addr, SimOptions::default(), false)
        .await
        .unwrap()
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

async fn post(url: &str, body: &str) -> Reply {
    let r = reqwest::Client::new()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    Reply {
        status: r.status().as_u16(),
        content_type: r
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string(),
        body: r.text().await.unwrap(),
    }
}

async fn json_call(s: &SimServer, body: Value) -> Value {
    let r = post(&format!("{}/jsonrpc", s.url), &body.to_string()).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.content_type, "application/json",
        "exactly, without a charset"
    );
    serde_json::from_str(&r.body).unwrap()
}

async fn session(s: &SimServer) -> String {
    let r = json_call(s, json!({"id":0,"jsonrpc":"2.0","method":"session.login_with_password","params":["root","password"]})).await;
    r["result"].as_str().unwrap().to_string()
}

/// The login request of wire-protocol.md, typed strings and all four params.
const XML_LOGIN: &str = "<?xml version='1.0'?>
<methodCall>
    <methodName>session.login_with_password</methodName>
    <params>
        <param><value><string>root</string></value></param>
        <param><value><string>password</string></value></param>
        <param><value><string>version</string></value></param>
        <param><value><string>originator</string></value></param>
    </params>
</methodCall>";

#[tokio::test]
async fn xmlrpc_login_success_envelope() {
    let s = sim().await;
    let r = post(&format!("{}/", s.url), XML_LOGIN).await;
    assert_eq!((r.status, r.content_type.as_str()), (200, "text/xml"));
    // <methodResponse><params><param><value><struct><member><name>Status</name>
    // <value>Success</value></member><member><name>Value</name><value>OpaqueRef:…
    assert!(
        r.body
            .starts_with("<?xml version=\"1.0\"?><methodResponse><params><param><value><struct>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<member><name>Status</name><value>Success</value></member>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<member><name>Value</name><value>OpaqueRef:"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .ends_with("</struct></value></param></params></methodResponse>")
    );
    // RPC2 and any other path are XML-RPC too (xen-api posts to /xmlrpc).
    for path in ["/RPC2", "/xmlrpc", "/json"] {
        let r = post(&format!("{}{path}", s.url), XML_LOGIN).await;
        assert_eq!(r.content_type, "text/xml", "{path}");
        assert!(r.body.contains("<value>Success</value>"), "{path}");
    }
}

#[tokio::test]
async fn xmlrpc_values_are_encoded_as_xapi_emits_them() {
    let s = sim().await;
    let sess = session(&s).await;
    // As XenAPI.py sends it: typed string.
    let typed = format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>VM.get_all_records</methodName>\n<params>\n<param>\n<value><string>{sess}</string></value>\n</param>\n</params>\n</methodCall>\n"
    );
    // As xen-api 4.7.6 sends it: untyped string.
    let untyped = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><methodCall><methodName>VM.get_all_records</methodName><params><param><value>{sess}</value></param></params></methodCall>"
    );
    for body in [typed, untyped] {
        let r = post(&format!("{}/xmlrpc", s.url), &body).await;
        let b = r.body;
        assert!(
            b.contains("<member><name>Status</name><value>Success</value></member>"),
            "{b}"
        );
        // Untyped strings, untyped int64, booleans, doubles printed with %.16g, dates.
        assert!(
            b.contains("<member><name>name_label</name><value>lua-bio-template</value></member>")
        );
        assert!(
            b.contains("<member><name>memory_static_max</name><value>1073741824</value></member>")
        );
        assert!(b.contains(
            "<member><name>is_a_template</name><value><boolean>1</boolean></value></member>"
        ));
        assert!(b.contains(
            "<member><name>HVM_shadow_multiplier</name><value><double>1</double></value></member>"
        ));
        assert!(b.contains("<member><name>snapshot_time</name><value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value></member>"));
        assert!(b.contains("<member><name>domid</name><value>-1</value></member>"));
        assert!(b.contains("<member><name>other_config</name><value><struct>"));
        assert!(
            b.contains("<member><name>resident_on</name><value>OpaqueRef:NULL</value></member>")
        );
        assert!(
            !b.contains("<string>") && !b.contains("<int>"),
            "xapi never types strings or int64"
        );
    }
}

#[tokio::test]
async fn xmlrpc_failure_and_list_methods() {
    let s = sim().await;
    let call = "<?xml version=\"1.0\"?><methodCall><methodName>VM.get_all_records</methodName><params><param><value>OpaqueRef:c90cd28f-37ec-4dbf-88e6-f697ccb28b39</value></param></params></methodCall>";
    let r = post(&format!("{}/", s.url), call).await;
    assert_eq!(r.status, 200, "API errors are HTTP 200");
    assert!(r.body.contains(
        "<member><name>ErrorDescription</name><value><array><data><value>SESSION_INVALID</value><value>OpaqueRef:c90cd28f-37ec-4dbf-88e6-f697ccb28b39</value></data></array></value></member>"
    ), "{}", r.body);
    assert!(
        r.body
            .contains("<member><name>Status</name><value>Failure</value></member>")
    );
    // system.listMethods takes no session and is not wrapped in Status/Value.
    let r = post(
        &format!("{}/", s.url),
        "<methodCall><methodName>system.listMethods</methodName><params/></methodCall>",
    )
    .await;
    assert!(
        r.body.starts_with(
            "<?xml version=\"1.0\"?><methodResponse><params><param><value><array><data>"
        ),
        "{}",
        r.body
    );
    assert!(r.body.contains("<value>VM.get_all_records</value>"));
    assert!(!r.body.contains("Status"));
    // Malformed XML is HTTP 500 with an HTML body.
    let r = post(&format!("{}/", s.url), "<methodCall><methodName>").await;
    assert_eq!((r.status, r.content_type.as_str()), (500, "text/html"));
}

#[tokio::test]
async fn jsonrpc_v2_literals() {
    let s = sim().await;
    // wire-protocol.md's v2 login with four params, and xen-api's with two.
    let r = json_call(&s, json!({"jsonrpc": "2.0", "method": "session.login_with_password", "params": ["root", "password", "version", "originator"], "id": 0})).await;
    assert_eq!(r["jsonrpc"], "2.0");
    assert_eq!(r["id"], 0);
    assert!(r["result"].as_str().unwrap().starts_with("OpaqueRef:"));
    assert!(r.get("error").is_none());
    // The error example of wire-protocol.md, v2 form.
    let r = json_call(&s, json!({"jsonrpc":"2.0","method":"VM.get_all_records","params":["OpaqueRef:c90cd28f-37ec-4dbf-88e6-f697ccb28b39"],"id":3})).await;
    assert_eq!(
        r,
        json!({"jsonrpc":"2.0","error":{"code":1,"message":"SESSION_INVALID","data":["OpaqueRef:c90cd28f-37ec-4dbf-88e6-f697ccb28b39"]},"id":3})
    );
    // Records: ints as numbers, floats as floats, datetimes as strings.
    let sess = session(&s).await;
    let r = json_call(
        &s,
        json!({"id":0,"jsonrpc":"2.0","method":"VM.get_all_records","params":[sess]}),
    )
    .await;
    let template = r["result"]
        .as_object()
        .unwrap()
        .values()
        .find(|v| v["name_label"] == "lua-bio-template")
        .unwrap();
    assert_eq!(template["memory_static_max"], json!(1073741824));
    assert!(template["memory_static_max"].is_i64());
    assert_eq!(template["HVM_shadow_multiplier"], json!(1.0));
    assert!(template["HVM_shadow_multiplier"].is_f64());
    assert_eq!(template["is_a_template"], json!(true));
    assert_eq!(
        template["suspend_VDI"],
        Value::Null,
        "fields the simulator does not keep are absent, not null"
    );
    assert_eq!(template["resident_on"], "OpaqueRef:NULL");
    // v2 may omit params.
    let r = json_call(
        &s,
        json!({"jsonrpc":"2.0","method":"system.listMethods","id":"m"}),
    )
    .await;
    assert!(
        r["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "event.from")
    );
}

#[tokio::test]
async fn jsonrpc_v1_literals() {
    let s = sim().await;
    let r = json_call(&s, json!({"method":"VM.get_all_records","params":["OpaqueRef:93f1a23cd-a640-41e3-b163-10f86e0eae67"],"id":"xyz"})).await;
    assert_eq!(
        r,
        json!({"result":null,"error":["SESSION_INVALID","OpaqueRef:93f1a23cd-a640-41e3-b163-10f86e0eae67"],"id":"xyz"})
    );
    let r = json_call(
        &s,
        json!({"method":"session.login_with_password","params":["root","password"],"id":7}),
    )
    .await;
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["id"], 7);
    assert!(r["result"].as_str().unwrap().starts_with("OpaqueRef:"));
    assert!(r.get("jsonrpc").is_none());
}

#[tokio::test]
async fn malformed_jsonrpc_is_http_500() {
    let s = sim().await;
    for bad in [
        json!({"jsonrpc":"2.0","params":[],"id":1}),
        json!({"jsonrpc":"3.0","method":"system.listMethods","params":[],"id":1}),
        json!({"jsonrpc":"2.0","method":"system.listMethods","params":[]}),
        json!({"jsonrpc":"2.0","method":"system.listMethods","params":[],"id":null}),
        json!({"method":"system.listMethods","id":1}),
    ] {
        let r = post(&format!("{}/jsonrpc", s.url), &bad.to_string()).await;
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (500, "text/html"),
            "{bad}"
        );
    }
    let r = post(&format!("{}/jsonrpc", s.url), "{not json").await;
    assert_eq!(r.status, 500);
}

#[tokio::test]
async fn errors_carry_xapi_codes_and_params() {
    let s = sim().await;
    let sess = session(&s).await;
    let call = |m: &str, p: Value| json!({"jsonrpc":"2.0","method":m,"params":p,"id":1});
    let r = json_call(
        &s,
        call("session.login_with_password", json!(["root", "wrong"])),
    )
    .await;
    assert_eq!(r["error"]["message"], "SESSION_AUTHENTICATION_FAILED");
    assert_eq!(r["error"]["data"][0], "root");
    let r = json_call(&s, call("VM.get_record", json!([sess, "OpaqueRef:nope"]))).await;
    assert_eq!(
        r["error"],
        json!({"code":1,"message":"HANDLE_INVALID","data":["VM","OpaqueRef:nope"]})
    );
    let r = json_call(
        &s,
        call(
            "VM.get_by_uuid",
            json!([sess, "00000000-0000-0000-0000-000000000000"]),
        ),
    )
    .await;
    assert_eq!(r["error"]["message"], "UUID_INVALID");
    let r = json_call(&s, call("VM.no_such_call", json!([sess]))).await;
    assert_eq!(r["error"]["data"], json!(["VM.no_such_call"]));
    assert_eq!(r["error"]["message"], "MESSAGE_METHOD_UNKNOWN");
    let r = json_call(&s, call("VM.get_record", json!([sess]))).await;
    assert_eq!(r["error"]["data"], json!(["VM.get_record", "2", "1"]));
    // A template cannot start; a bool param must be a real boolean.
    let t = json_call(
        &s,
        call("VM.get_by_name_label", json!([sess, "lua-bio-template"])),
    )
    .await["result"][0]
        .clone();
    let r = json_call(&s, call("VM.start", json!([sess, t, false, false]))).await;
    assert_eq!(r["error"]["message"], "VM_IS_TEMPLATE");
    assert_eq!(r["error"]["data"], json!([t, "start"]));
    let r = json_call(&s, call("VM.start", json!([sess, t, "false", false]))).await;
    assert_eq!(r["error"]["message"], "INTERNAL_ERROR");
    // get_all_records_where with xapi's filter language.
    let r = json_call(
        &s,
        call(
            "VM.get_all_records_where",
            json!([sess, "field \"is_control_domain\"=\"true\""]),
        ),
    )
    .await;
    assert_eq!(r["result"].as_object().unwrap().len(), 1);
    let r = json_call(
        &s,
        call("VM.get_all_records_where", json!([sess, "field \"x\" ="])),
    )
    .await;
    assert_eq!(r["error"]["message"], "INVALID_VALUE");
}

#[tokio::test]
async fn event_from_shape_on_both_transports() {
    let s = sim().await;
    let sess = session(&s).await;
    let call = |m: &str, p: Value| json!({"jsonrpc":"2.0","method":m,"params":p,"id":1});
    let pools = json_call(&s, call("pool.get_all_records", json!([sess]))).await;
    let pool = pools["result"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let token =
        json_call(&s, call("event.inject", json!([sess, "pool", pool]))).await["result"].clone();
    assert!(
        token.as_str().unwrap().len() == 41 && token.as_str().unwrap().contains(','),
        "{token}"
    );
    let r = json_call(&s, call("event.from", json!([sess, ["POOL"], token, 5.0]))).await;
    let batch = &r["result"];
    let ev = &batch["events"][0];
    assert_eq!(ev["class"], "pool");
    assert_eq!(ev["operation"], "mod");
    assert_eq!(ev["ref"], pool);
    assert_eq!(ev["timestamp"], "0.0");
    assert!(ev["id"].is_string());
    assert_eq!(ev["snapshot"]["name_label"], "sim-pool");
    for table in [
        "pool",
        "host",
        "vm",
        "vm_metrics",
        "vm_guest_metrics",
        "task",
    ] {
        assert!(
            batch["valid_ref_counts"][table].is_i64(),
            "{table} in {}",
            batch["valid_ref_counts"]
        );
    }
    assert!(batch["token"].as_str().unwrap() > token.as_str().unwrap());
    // An empty batch only on timeout.
    let started = std::time::Instant::now();
    let r = json_call(
        &s,
        call("event.from", json!([sess, ["vm"], batch["token"], 0.3])),
    )
    .await;
    assert!(r["result"]["events"].as_array().unwrap().is_empty());
    assert!(started.elapsed().as_secs_f64() >= 0.25);
    // "" is a full load: every object as an add.
    let r = json_call(&s, call("event.from", json!([sess, ["host"], "", 1.0]))).await;
    assert_eq!(r["result"]["events"][0]["operation"], "add");
    let r = json_call(
        &s,
        call("event.from", json!([sess, ["vm"], "garbage", 1.0])),
    )
    .await;
    assert_eq!(
        r["error"],
        json!({"code":1,"message":"EVENT_FROM_TOKEN_PARSE_FAILURE","data":["garbage"]})
    );
    // XML-RPC: valid_ref_counts are <i4>, the event id is a string.
    let xml = format!(
        "<methodCall><methodName>event.from</methodName><params><param><value>{sess}</value></param>\
         <param><value><array><data><value>host</value></data></array></value></param>\
         <param><value></value></param><param><value><double>1.0</double></value></param></params></methodCall>"
    );
    let r = post(&format!("{}/", s.url), &xml).await;
    assert!(
        r.body
            .contains("<member><name>host</name><value><i4>1</i4></value></member>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<member><name>class</name><value>host</value></member>")
    );
    assert!(
        r.body
            .contains("<member><name>operation</name><value>add</value></member>")
    );
}
