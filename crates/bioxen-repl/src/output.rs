//! Block-buffered output on a terminal, flushed whenever output must appear.
//!
//! C stdio line-buffers a terminal, and Lua's `print` flushes after every line
//! besides, so it costs one `write(2)` per line: a two-million-line loop spends its
//! time in the kernel and in whatever drains the PTY, not in Lua. Here stdout keeps a
//! 64 KiB buffer instead, `print` is Lua's own less its flush, and stdout is flushed:
//! - before a prompt, a result or an error is written (the REPL does that itself);
//! - before anything is written to stderr, so an error still comes after the prints
//!   before it: stderr is a stream of ours that flushes stdout, then writes;
//! - before stdin is read (`io.read`, `io.lines`, `io.stdin:read`): stdin is also
//!   a stream of ours that flushes stdout, then reads;
//! - before `os.execute` and `io.popen` start a program that shares the terminal;
//! - at most 10 ms after output is written while a chunk runs, by a thread that
//!   sleeps whenever no chunk runs, so a slow producer's lines appear at once and an
//!   idle interpreter wakes no one.
//!
//! With stdout not a terminal nothing changes: C stdio block-buffers it already.

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use mlua::ffi;

/// How long written output may wait while a chunk runs.
const FLUSH_EVERY: Duration = Duration::from_millis(10);

unsafe extern "C" {
    static mut stdin: *mut libc::FILE;
    static mut stdout: *mut libc::FILE;
    static mut stderr: *mut libc::FILE;
    fn fopencookie(
        cookie: *mut libc::c_void,
        mode: *const libc::c_char,
        io: CookieIo,
    ) -> *mut libc::FILE;
}

/// glibc's `cookie_io_functions_t`.
#[repr(C)]
struct CookieIo {
    read: Option<unsafe extern "C" fn(*mut libc::c_void, *mut libc::c_char, usize) -> isize>,
    write: Option<unsafe extern "C" fn(*mut libc::c_void, *const libc::c_char, usize) -> isize>,
    seek: Option<unsafe extern "C" fn(*mut libc::c_void, *mut i64, libc::c_int) -> libc::c_int>,
    close: Option<unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int>,
}

/// Switches to block buffering when stdout is a terminal. Must run before the Lua
/// state opens its `io` library (which takes the C streams as they are then) and
/// before anything is written.
///
/// `BIOXEN_LUA_UNBUFFERED=1` instead makes stdout unbuffered: every write reaches
/// the terminal in program order, the reference the buffered output is tested against.
pub fn block_buffer_terminal() -> bool {
    if std::env::var_os("BIOXEN_LUA_UNBUFFERED").is_some_and(|v| v == "1") {
        // SAFETY: before any output, on the main thread.
        unsafe { libc::setvbuf(stdout, std::ptr::null_mut(), libc::_IONBF, 0) };
        return false;
    }
    // SAFETY: isatty on a constant descriptor.
    if unsafe { libc::isatty(1) } != 1 {
        return false;
    }
    // SAFETY: called once, on the main thread, before any stream is used; glibc lets
    // a program assign stdin and stderr. A stream that cannot be made is left as is.
    unsafe {
        let err = fopencookie(
            std::ptr::null_mut(),
            c"w".as_ptr(),
            CookieIo {
                read: None,
                write: Some(write_stderr),
                seek: None,
                close: None,
            },
        );
        let input = fopencookie(
            std::ptr::null_mut(),
            c"r".as_ptr(),
            CookieIo {
                read: Some(read_stdin),
                write: None,
                seek: None,
                close: None,
            },
        );
        if err.is_null() || input.is_null() {
            return false;
        }
        libc::setvbuf(err, std::ptr::null_mut(), libc::_IONBF, 0);
        stderr = err;
        stdin = input;
        libc::setvbuf(stdout, std::ptr::null_mut(), libc::_IOFBF, 64 << 10);
    }
    true
}

/// Flushes C stdout (Lua's `print` and `io.write` go through it).
pub fn flush() {
    // SAFETY: fflush on the process's stdout stream, which always exists.
    unsafe {
        libc::fflush(stdout);
    }
}

unsafe extern "C" fn write_stderr(
    _: *mut libc::c_void,
    buf: *const libc::c_char,
    n: usize,
) -> isize {
    flush();
    loop {
        // SAFETY: glibc hands over `n` readable bytes at `buf`.
        let written = unsafe { libc::write(2, buf.cast(), n) };
        if written >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            return written;
        }
    }
}

/// Ctrl-C must end a chunk waiting here, as it ends one waiting in C stdio's own
/// stdin: the read gives EINTR back when Ctrl-C stops the chunk. It waits with SIGINT
/// blocked until `ppoll` unblocks it atomically, so a Ctrl-C that lands just before
/// the wait still interrupts it instead of being missed.
unsafe extern "C" fn read_stdin(_: *mut libc::c_void, buf: *mut libc::c_char, n: usize) -> isize {
    flush();
    // SAFETY: signal-mask and poll calls on this thread with valid, owned arguments;
    // glibc hands over room for `n` bytes at `buf`.
    unsafe {
        let mut sigint: libc::sigset_t = std::mem::zeroed();
        let mut before: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut sigint);
        libc::sigaddset(&mut sigint, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &sigint, &mut before);
        let ready = loop {
            if super::interrupt::pending() {
                *libc::__errno_location() = libc::EINTR;
                break -1;
            }
            let mut fd = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            let ready = libc::ppoll(&mut fd, 1, std::ptr::null(), &before);
            // Another signal (a resize) goes on waiting; only Ctrl-C ends the read.
            if ready >= 0 || *libc::__errno_location() != libc::EINTR {
                break ready;
            }
        };
        let errno = *libc::__errno_location();
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        if ready < 0 {
            *libc::__errno_location() = errno;
            return -1;
        }
        libc::read(0, buf.cast(), n)
    }
}

/// Lua 5.4's `print` (`luaB_print`) without the `fflush` after each line.
///
/// # Safety
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn print(state: *mut ffi::lua_State) -> libc::c_int {
    // SAFETY: the stack indices are within `lua_gettop`; `luaL_tolstring` leaves one
    // string on the stack (or raises an error, as the original does); the FILE calls
    // take stdout, which always exists.
    unsafe {
        let n = ffi::lua_gettop(state);
        for i in 1..=n {
            let mut len = 0;
            let s = ffi::luaL_tolstring(state, i, &mut len);
            if i > 1 {
                libc::fwrite(c"\t".as_ptr().cast(), 1, 1, stdout);
            }
            libc::fwrite(s.cast(), 1, len, stdout);
            ffi::lua_pop(state, 1);
        }
        libc::fwrite(c"\n".as_ptr().cast(), 1, 1, stdout);
    }
    0
}

/// Lua wrappers that flush before a program that shares the terminal starts. The
/// wrapped function is not called in tail position, so an error about its arguments
/// still names it.
pub const FLUSH_BEFORE_PROGRAMS: &str = r#"
local flush, execute, popen = io.stdout.flush, os.execute, io.popen
local stdout = io.stdout
local function pass(...) return ... end
os.execute = function(...) flush(stdout) return pass(execute(...)) end
io.popen = function(...) flush(stdout) return pass(popen(...)) end
"#;

/// While it lives, a chunk runs: output is flushed every [`FLUSH_EVERY`].
pub struct Running(());

impl Running {
    pub fn start() -> Running {
        let f = flusher();
        *lock(&f.running) = true;
        f.wake.notify_one();
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        *lock(&flusher().running) = false;
        flush();
    }
}

struct Flusher {
    running: Mutex<bool>,
    wake: Condvar,
}

fn flusher() -> &'static Flusher {
    static FLUSHER: OnceLock<&'static Flusher> = OnceLock::new();
    FLUSHER.get_or_init(|| {
        let f: &'static Flusher = Box::leak(Box::new(Flusher {
            running: Mutex::new(false),
            wake: Condvar::new(),
        }));
        // The thread starts with every signal blocked, so Ctrl-C always lands on the
        // interpreter's thread, where it interrupts a read of stdin.
        // SAFETY: signal-mask calls on this thread with owned sets; the mask is put
        // back right after the spawn.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut before: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut before);
            let _ = std::thread::Builder::new()
                .name("bioxen-lua-flush".into())
                .spawn(move || flush_loop(f));
            libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
        }
        f
    })
}

fn flush_loop(f: &Flusher) {
    let mut running = lock(&f.running);
    loop {
        while !*running {
            running = f.wake.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        running = f
            .wake
            .wait_timeout(running, FLUSH_EVERY)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        if *running {
            // Not under the lock: a flush blocks while the terminal is full, and the
            // interpreter must still be able to start and end chunks meanwhile.
            drop(running);
            flush();
            running = lock(&f.running);
        }
    }
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: the flag behind it
/// stays consistent between statements.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
