//! `bioxen sim`: the simulated pool on a port of its own, its guests answering SSH,
//! until a signal ends it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::args::SimCli;

pub fn command(cli: SimCli) -> ExitCode {
    let SimCli {
        listen,
        user,
        password_env,
        boot_delay_ms,
        guest_ip,
        ssh_port,
        authorized_keys,
        tls,
        member_of,
        master_thumbprint,
        latency_ms,
        vms,
        fail,
        drop_next,
        http500_next,
        garbage_next,
        event_delay_ms,
    } = cli;
    let faults = crate::sim::Faults {
        latency: Duration::from_millis(latency_ms),
        drop_next,
        http500_next,
        garbage_next,
        fail_method: fail,
        event_delay: Duration::from_millis(event_delay_ms),
    };
    // The default password is the simulator's, known to all; one from a
    // variable is the user's and is never shown.
    let password_line = match &password_env {
        Some(var) => format!("password_env = \"{var}\""),
        None => "password = \"password\"".to_string(),
    };
    let password = match password_env {
        Some(var) => match std::env::var(&var) {
            Ok(p) => p,
            Err(_) => {
                eprintln!("bioxen sim: ${var} is not set");
                return ExitCode::from(2);
            }
        },
        None => "password".to_string(),
    };
    let guests = match &guest_ip {
        Some(_) => None,
        None => match sim_guests(ssh_port, authorized_keys) {
            Ok(g) => Some(g),
            Err(e) => {
                eprintln!("bioxen sim: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let options = crate::sim::SimOptions {
        username: user,
        password,
        boot_delay: Duration::from_millis(boot_delay_ms),
        guest_ip: guest_ip.unwrap_or_else(|| "127.0.0.1".into()),
        guests: guests.clone(),
        member_of,
        master_thumbprint: master_thumbprint.map(|t| t.trim_start_matches("sha256:").to_string()),
        host_address: listen.ip().to_string(),
        ..Default::default()
    };
    let Ok(runtime) = crate::runtime() else {
        eprintln!("bioxen sim: cannot start the runtime");
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        match crate::sim::SimServer::start(listen, options, tls).await {
            Ok(server) => {
                let armed = faults.describe();
                if let Ok(mut f) = server.sim.faults.lock() {
                    *f = faults;
                }
                server.sim.add_bulk_vms(vms);
                println!("bioxen sim: listening on {}", server.url);
                if let Some(fp) = &server.fingerprint {
                    println!("bioxen sim: certificate {fp}");
                }
                for fault in armed {
                    println!("bioxen sim: fault armed: {fault}");
                }
                if let Some(g) = &guests {
                    println!(
                        "bioxen sim: guests answer SSH on port {} at 127.0.0.2 and up, for {} key(s)",
                        g.port,
                        g.authorized.len()
                    );
                }
                let user = &server.sim.options.username;
                println!("bioxen sim: for bioxen.toml:");
                println!("[xcpng]\nurl = \"{}\"\nusername = \"{user}\"\n{password_line}", server.url);
                if let Some(fp) = &server.fingerprint {
                    println!("tls_fingerprint = \"{fp}\"");
                }
                if let Some(g) = &guests {
                    println!("[xcpng.ssh]\nport = {}", g.port);
                }
                if !listen.ip().is_loopback() {
                    eprintln!("bioxen sim: warning: listening on {}, reachable from other machines", listen.ip());
                }
                use std::io::Write;
                let _ = std::io::stdout().flush();
                let _ = crate::cli::wait_for_stop_signal().await;
                // A guest's programs end with it, as a halted VM's do.
                server.sim.stop_guests();
                if let Some(dir) = guests.as_ref().and_then(|g| g.fallback_path.as_ref()) {
                    let _ = std::fs::remove_dir_all(dir);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bioxen sim: cannot listen on {listen}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The simulated guests' SSH: the keys to accept (the user's own by default), and
/// stand-ins for `lua5.4` in a directory of this process's, removed at exit.
fn sim_guests(
    port: u16,
    keys: Vec<PathBuf>,
) -> Result<std::sync::Arc<crate::sim::guest::GuestConfig>, String> {
    let keys = if keys.is_empty() {
        let ssh_dir = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh"))
            .unwrap_or_default();
        std::fs::read_dir(&ssh_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "pub"))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        keys
    };
    let config = crate::sim::guest::GuestConfig::with_keys_from(port, &keys)
        .map_err(|e| format!("reading the keys to accept: {e}"))?;
    if config.authorized.is_empty() {
        eprintln!(
            "bioxen sim: warning: the guests accept no key (none in ~/.ssh/*.pub); \
             give one with --authorized-keys FILE"
        );
    }
    let dir = std::env::temp_dir().join(format!("bioxen-sim-{}", std::process::id()));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    config
        .with_fallback_lua(&dir, &exe)
        .map(std::sync::Arc::new)
        .map_err(|e| format!("{}: {e}", dir.display()))
}
