//! Records as xapi shapes them: the fields a client reads, with xapi's types (int64
//! sizes, `OpaqueRef:NULL` for empty refs, datetimes in `YYYYMMDDTHH:MM:SSZ`).

use std::collections::BTreeMap;

use super::db::{NULL_REF, Record, new_uuid};
use bioxen_backend::xapi::wire::XVal;

pub const NEVER: &str = "19700101T00:00:00Z";

fn s(v: &str) -> XVal {
    XVal::str(v)
}

fn refs(v: &[String]) -> XVal {
    XVal::Array(v.iter().map(|r| s(r)).collect())
}

fn empty_map() -> XVal {
    XVal::Struct(BTreeMap::new())
}

pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86400;
    let (h, m, sec) = ((secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}{mo:02}{d:02}T{h:02}:{m:02}:{sec:02}Z")
}

pub struct VmSpec<'a> {
    pub name: &'a str,
    pub template: bool,
    pub default_template: bool,
    pub control_domain: bool,
    pub memory: i64,
    pub vcpus: i64,
    pub metrics: String,
    pub other_config: BTreeMap<String, XVal>,
}

pub fn vm(spec: VmSpec) -> Record {
    let power = if spec.control_domain {
        "Running"
    } else {
        "Halted"
    };
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        ("name_label".into(), s(spec.name)),
        ("name_description".into(), s("")),
        ("power_state".into(), s(power)),
        ("is_a_template".into(), XVal::Bool(spec.template)),
        (
            "is_default_template".into(),
            XVal::Bool(spec.default_template),
        ),
        ("is_a_snapshot".into(), XVal::Bool(false)),
        ("is_control_domain".into(), XVal::Bool(spec.control_domain)),
        ("other_config".into(), XVal::Struct(spec.other_config)),
        ("tags".into(), XVal::Array(Vec::new())),
        ("resident_on".into(), s(NULL_REF)),
        ("affinity".into(), s(NULL_REF)),
        ("metrics".into(), s(&spec.metrics)),
        ("guest_metrics".into(), s(NULL_REF)),
        ("VCPUs_max".into(), XVal::Int(spec.vcpus)),
        ("VCPUs_at_startup".into(), XVal::Int(spec.vcpus)),
        ("memory_static_min".into(), XVal::Int(spec.memory)),
        ("memory_static_max".into(), XVal::Int(spec.memory)),
        ("memory_dynamic_min".into(), XVal::Int(spec.memory)),
        ("memory_dynamic_max".into(), XVal::Int(spec.memory)),
        ("memory_overhead".into(), XVal::Int(spec.memory / 128)),
        (
            "domid".into(),
            XVal::Int(if spec.control_domain { 0 } else { -1 }),
        ),
        (
            "allowed_operations".into(),
            XVal::Array(vec![s("start"), s("clone"), s("destroy")]),
        ),
        ("current_operations".into(), empty_map()),
        ("blocked_operations".into(), empty_map()),
        ("VBDs".into(), XVal::Array(Vec::new())),
        ("VIFs".into(), XVal::Array(Vec::new())),
        ("consoles".into(), XVal::Array(Vec::new())),
        ("snapshots".into(), XVal::Array(Vec::new())),
        ("domain_type".into(), s("pvh")),
        ("HVM_shadow_multiplier".into(), XVal::Float(1.0)),
        ("snapshot_time".into(), XVal::DateTime(NEVER.into())),
        ("start_delay".into(), XVal::Int(0)),
        ("shutdown_delay".into(), XVal::Int(0)),
        ("order".into(), XVal::Int(0)),
        ("requires_reboot".into(), XVal::Bool(false)),
        ("platform".into(), empty_map()),
    ])
}

pub fn vm_metrics(memory: i64, vcpus: i64) -> Record {
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        ("memory_actual".into(), XVal::Int(memory)),
        ("VCPUs_number".into(), XVal::Int(vcpus)),
        (
            "VCPUs_utilisation".into(),
            XVal::Struct(BTreeMap::from([("0".to_string(), XVal::Float(0.0))])),
        ),
        ("state".into(), XVal::Array(Vec::new())),
        ("start_time".into(), XVal::DateTime(NEVER.into())),
        ("install_time".into(), XVal::DateTime(now())),
        ("last_updated".into(), XVal::DateTime(now())),
        ("current_domain_type".into(), s("pvh")),
    ])
}

pub fn guest_metrics(ip: &str) -> Record {
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        (
            "networks".into(),
            XVal::Struct(BTreeMap::from([
                ("0/ip".to_string(), s(ip)),
                ("0/ipv4/0".to_string(), s(ip)),
            ])),
        ),
        (
            "os_version".into(),
            XVal::Struct(BTreeMap::from([
                ("name".to_string(), s("Debian GNU/Linux 12 (bookworm)")),
                ("distro".to_string(), s("debian")),
                ("major".to_string(), s("12")),
            ])),
        ),
        ("PV_drivers_detected".into(), XVal::Bool(true)),
        ("live".into(), XVal::Bool(true)),
        (
            "other".into(),
            XVal::Struct(BTreeMap::from([("feature-shutdown".to_string(), s("1"))])),
        ),
        ("last_updated".into(), XVal::DateTime(now())),
    ])
}

pub fn host(name: &str, address: &str, control_domain: &str, metrics: &str) -> Record {
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        ("name_label".into(), s(name)),
        ("name_description".into(), s("bioxen XAPI simulator")),
        ("hostname".into(), s(name)),
        ("address".into(), s(address)),
        ("enabled".into(), XVal::Bool(true)),
        ("resident_VMs".into(), refs(&[control_domain.to_string()])),
        ("control_domain".into(), s(control_domain)),
        ("metrics".into(), s(metrics)),
        ("API_version_major".into(), XVal::Int(2)),
        ("API_version_minor".into(), XVal::Int(21)),
        (
            "software_version".into(),
            XVal::Struct(BTreeMap::from([
                ("product_brand".to_string(), s("XCP-ng")),
                ("product_version".to_string(), s("8.3.0")),
                ("xapi".to_string(), s("24.19")),
            ])),
        ),
        ("https_only".into(), XVal::Bool(false)),
        ("other_config".into(), empty_map()),
    ])
}

pub fn host_metrics(total: i64) -> Record {
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        ("memory_total".into(), XVal::Int(total)),
        ("memory_free".into(), XVal::Int(total / 2)),
        ("live".into(), XVal::Bool(true)),
        ("last_updated".into(), XVal::DateTime(now())),
    ])
}

pub fn pool(master: &str, default_sr: &str) -> Record {
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        ("name_label".into(), s("sim-pool")),
        ("name_description".into(), s("")),
        ("master".into(), s(master)),
        ("default_SR".into(), s(default_sr)),
        ("other_config".into(), empty_map()),
    ])
}

pub fn sr(name: &str) -> Record {
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        ("name_label".into(), s(name)),
        ("type".into(), s("ext")),
        ("content_type".into(), s("user")),
        ("physical_size".into(), XVal::Int(1 << 40)),
        ("physical_utilisation".into(), XVal::Int(0)),
        ("VDIs".into(), XVal::Array(Vec::new())),
        ("other_config".into(), empty_map()),
    ])
}

pub fn vdi(name: &str, size: i64, sr: &str) -> Record {
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        ("name_label".into(), s(name)),
        ("virtual_size".into(), XVal::Int(size)),
        ("SR".into(), s(sr)),
        ("VBDs".into(), XVal::Array(Vec::new())),
        ("type".into(), s("system")),
        ("read_only".into(), XVal::Bool(false)),
        ("other_config".into(), empty_map()),
    ])
}

pub fn vbd(vm: &str, vdi: &str, kind: &str, device: &str, bootable: bool) -> Record {
    Record::from([
        ("uuid".into(), s(&new_uuid())),
        ("VM".into(), s(vm)),
        ("VDI".into(), s(vdi)),
        ("type".into(), s(kind)),
        ("userdevice".into(), s(device)),
        ("bootable".into(), XVal::Bool(bootable)),
        ("empty".into(), XVal::Bool(vdi == NULL_REF)),
        ("mode".into(), s(if kind == "CD" { "RO" } else { "RW" })),
        ("currently_attached".into(), XVal::Bool(false)),
        ("other_config".into(), empty_map()),
    ])
}
