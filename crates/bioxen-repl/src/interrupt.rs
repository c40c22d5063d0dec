//! Ctrl-C during a running chunk, done the way the reference `lua` does it.
//!
//! The SIGINT handler only calls `lua_sethook`, which Lua documents as safe to call from
//! a signal handler. The hook then fires at the next instruction inside the VM and
//! raises `interrupted!` there, as an ordinary Lua error: the chunk unwinds, every
//! global survives, and the REPL prints the error with its position and returns to the
//! prompt. A signal that arrives while no chunk runs is ignored rather than killing the
//! interpreter, so a stray Ctrl-C never costs a researcher their session.

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use mlua::ffi;

static STATE: AtomicPtr<ffi::lua_State> = AtomicPtr::new(std::ptr::null_mut());
static RUNNING: AtomicBool = AtomicBool::new(false);
/// Set by a Ctrl-C that will stop the running chunk, until the hook raises the error
/// or the chunk ends.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Whether a Ctrl-C is about to stop the running chunk: a read of stdin must not
/// start waiting then.
pub fn pending() -> bool {
    PENDING.load(Ordering::SeqCst)
}

/// Installs the SIGINT handler for the interpreter whose main state is `state`.
pub fn install(state: *mut ffi::lua_State) {
    STATE.store(state, Ordering::SeqCst);
    // SAFETY: the handler only touches atomics and calls lua_sethook, which is
    // async-signal-safe by Lua's contract.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = 0;
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

/// Marks a chunk as running for the duration of the guard.
pub struct Running;

impl Running {
    pub fn start() -> Self {
        RUNNING.store(true, Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::SeqCst);
        PENDING.store(false, Ordering::SeqCst);
        let state = STATE.load(Ordering::SeqCst);
        if !state.is_null() {
            // A signal that came in after the chunk's last instruction left the hook set;
            // clear it so the next chunk does not start interrupted.
            // SAFETY: called on the interpreter's own thread, between calls.
            unsafe { ffi::lua_sethook(state, None, 0, 0) };
        }
    }
}

extern "C" fn on_sigint(_sig: libc::c_int) {
    let state = STATE.load(Ordering::SeqCst);
    if RUNNING.load(Ordering::SeqCst) && !state.is_null() {
        PENDING.store(true, Ordering::SeqCst);
        let mask = ffi::LUA_MASKCALL | ffi::LUA_MASKRET | ffi::LUA_MASKCOUNT;
        // SAFETY: lua_sethook may be called asynchronously from a signal handler.
        unsafe { ffi::lua_sethook(state, Some(stop), mask, 1) };
    }
}

unsafe extern "C-unwind" fn stop(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    // SAFETY: called by the Lua VM as a hook on its own thread; luaL_error unwinds back
    // to the protected call through C frames only (this function owns nothing).
    unsafe {
        ffi::lua_sethook(state, None, 0, 0);
        // Delivered: a chunk that catches the error and reads stdin again waits again.
        PENDING.store(false, Ordering::SeqCst);
        ffi::luaL_error(state, c"interrupted!".as_ptr());
    }
}
