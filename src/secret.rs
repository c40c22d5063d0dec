//! Passwords from where the config says they are: an environment variable, a command
//! (run without a shell, first line of its output), or the config file itself.
//! The value never appears in logs, messages or `Debug` output.

/// Where a password comes from, as configured.
pub struct PasswordSource<'a> {
    /// What the messages call the section, e.g. `[xcpng]`.
    pub section: &'a str,
    pub env: Option<&'a str>,
    pub command: Option<&'a str>,
    pub literal: Option<&'a str>,
}

impl PasswordSource<'_> {
    /// The password, `None` when no source is configured.
    pub fn resolve(&self) -> Result<Option<String>, String> {
        let section = self.section;
        if let Some(var) = self.env {
            return std::env::var(var)
                .map(Some)
                .map_err(|_| format!("{section} password_env names ${var}, which is not set"));
        }
        if let Some(cmd) = self.command {
            let argv =
                shell_words::split(cmd).map_err(|e| format!("{section} password_command: {e}"))?;
            let Some((program, args)) = argv.split_first() else {
                return Err(format!("{section} password_command is empty"));
            };
            let out = std::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output()
                .map_err(|e| format!("{section} password_command '{program}' cannot run: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{section} password_command '{program}' failed ({})",
                    out.status
                ));
            }
            return Ok(Some(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        Ok(self.literal.map(str::to_string))
    }
}
