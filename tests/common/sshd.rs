//! A private OpenSSH server on loopback for tests: its own config, host key, client
//! key and authorized_keys in a temp dir, never touching /etc/ssh. Stopped by its pid
//! when dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub port: u16,
    pub dir: PathBuf,
    /// Private key the server accepts.
    pub client_key: PathBuf,
    /// A known_hosts file that already trusts this server.
    pub known_hosts: PathBuf,
    /// The server's host key fingerprint, `SHA256:…`.
    pub fingerprint: String,
    pub user: String,
    /// Sessions' PATH, when not sshd's default.
    path: Option<String>,
    child: Option<Child>,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a helper");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Sshd {
    /// A server whose sessions find every program of /usr/bin but `missing` on their
    /// PATH: a host without dtach, say.
    pub fn start_without(name: &str, missing: &[&str]) -> Sshd {
        let mut sshd = Sshd::start(name);
        sshd.path = Some(super::path_without(&sshd.dir.join("bin"), missing));
        sshd.restart();
        sshd
    }

    pub fn start(name: &str) -> Sshd {
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "this test needs OpenSSH's server: apt-get install -y openssh-server"
        );
        super::require_program("ssh-keygen", "openssh-client");
        super::require_program("lua5.4", "lua5.4");
        // sshd's compiled-in privilege separation directory.
        if std::fs::create_dir_all("/run/sshd").is_err() {
            panic!("sshd needs /run/sshd: run `sudo mkdir -p /run/sshd` (or the tests as root)");
        }
        let dir = std::env::temp_dir().join(format!("bioxen-sshd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(dir.join(key)));
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let user = run(Command::new("id").arg("-un")).trim().to_string();
        let port = super::free_port();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let known_hosts = dir.join("known_hosts");
        let mut fields = host_pub.split_whitespace();
        let (algo, key) = (fields.next().unwrap(), fields.next().unwrap());
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {algo} {key}\n")).unwrap();
        let fp_line = run(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(dir.join("host_key.pub")));
        let fingerprint = fp_line.split_whitespace().nth(1).unwrap().to_string();
        let mut sshd = Sshd {
            port,
            client_key: dir.join("client_key"),
            known_hosts,
            fingerprint,
            user,
            dir,
            path: None,
            child: None,
        };
        sshd.launch();
        sshd
    }

    /// `SetEnv TMPDIR`: interpreters held by dtach keep their sockets in this server's
    /// directory, so the server's end ends them too (see `Drop`).
    ///
    /// `SetEnv SHLVL=5`: bash sources the account's ~/.bashrc when sshd starts it, unless
    /// it is a nested shell. The tests log in as the developer's own account, whose
    /// startup files are not what is tested and can hang a session (a stale
    /// `pyenv rehash` lock left by a killed connection waits forever).
    fn launch(&mut self) {
        let d = &self.dir;
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\nStrictModes no\n\
             LogLevel VERBOSE\n\
             SetEnv SHLVL=5 TMPDIR={d}{path}\n",
            port = self.port,
            d = d.display(),
            path = self
                .path
                .as_ref()
                .map(|p| format!(" PATH={p}"))
                .unwrap_or_default()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    fn listener_pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Processes serving open connections (children of the listener).
    pub fn connection_pids(&self) -> Vec<u32> {
        let Some(parent) = self.listener_pid() else {
            return Vec::new();
        };
        let out = Command::new("pgrep")
            .args(["-P", &parent.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills the processes serving open connections: the link drops, the listener stays.
    pub fn drop_connections(&self) {
        for pid in self.connection_pids() {
            // SAFETY: kill(2) of a process this test started (through sshd).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }

    /// Stops the whole server (listener and connections).
    pub fn stop(&mut self) {
        self.drop_connections();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port with the same keys.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// `[[ssh_hosts]]` TOML for this server.
    pub fn host_entry(&self, name: &str, known_hosts: &Path, command: &str) -> String {
        format!(
            "[[ssh_hosts]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\ncommand = \"{command}\"\n",
            self.port,
            self.user,
            self.client_key.display(),
            known_hosts.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        // Interpreters held by dtach outlive connections, as they should; not tests.
        // SIGKILL: a dtach master whose program already ended stays on after SIGTERM
        // (one outlived its test by a quarter of an hour, its child a zombie).
        for holder in ["dtach -A ", "python3 "] {
            let _ = Command::new("pkill")
                .args(["-KILL", "-f"])
                .arg(format!("{holder}{}/", self.dir.display()))
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A simulated pool whose guests are reachable at `sshd`, and a config for it.
pub async fn pool_with_guests_at(sshd: &Sshd) -> (bioxen::sim::SimServer, String) {
    let sim = bioxen::sim::SimServer::start(
        "127.0.0.1:0".parse().unwrap(),
        bioxen::sim::SimOptions::default(),
        false,
    )
    .await
    .unwrap();
    let config = format!(
        "[xcpng]\nurl = \"{}\"\npassword = \"password\"\n\
         [xcpng.ssh]\nuser = \"{}\"\nport = {}\nidentity = \"{}\"\nknown_hosts = \"{}\"\ncommand = \"lua5.4 -i\"\n",
        sim.url,
        sshd.user,
        sshd.port,
        sshd.client_key.display(),
        sshd.known_hosts.display()
    );
    (sim, config)
}
