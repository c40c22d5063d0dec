//! An OSC that never ends must not grow memory. Measured as the process's resident
//! size, so it runs alone in its own test binary: other tests' allocations in the same
//! process would be counted too.

use bioxen::Size;
use bioxen::term::Screen;

/// Held by each test while it measures: tests in one binary run on parallel threads,
/// and one's allocations would be counted in the other's growth.
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// An OSC that never ends costs at most its bounded payload, not a byte per byte.
#[test]
fn an_unterminated_osc_does_not_grow_memory() {
    let _alone = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let mut s = Screen::new(Size::new(24, 80), 100);
    s.feed(b"\x1b]2;");
    let chunk = vec![b'x'; 64 * 1024];
    let before = rss_bytes();
    for _ in 0..3200 {
        s.feed(&chunk);
    }
    // The effect this guards against is 200 MB.
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "200 MB of OSC grew memory by {grown} bytes"
    );
    s.feed(b"\x07after");
    assert!(s.title().is_some_and(|t| t.len() <= 200));
    assert!(s.text().contains("after"));
}

/// A mirror made from a snapshot taken in the middle of an endless OSC (a dashboard
/// attaching, or catching up after it fell behind) keeps the bound: the rest of the
/// string does not grow it.
#[test]
fn a_mirror_made_inside_an_endless_osc_stays_bounded() {
    let _alone = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let chunk = vec![b'A'; 64 * 1024];
    for opener in [&b"\x1b]0;"[..], b"\x1b]8;;"] {
        let mut server = Screen::new(Size::new(24, 80), 100);
        server.feed(b"before\r\n");
        server.feed(opener);
        server.feed(&chunk);
        let mut mirror = Screen::from_snapshot(&server.snapshot(), 100, 1 << 20);
        let before = rss_bytes();
        for _ in 0..1600 {
            server.feed(&chunk);
            mirror.feed(&chunk);
        }
        // 100 MB went by; unbounded, the mirror holds all of it.
        let grown = rss_bytes().saturating_sub(before);
        assert!(
            grown < 32 << 20,
            "100 MB of OSC grew the mirror by {grown} bytes"
        );
        for s in [&mut server, &mut mirror] {
            s.feed(b"\x07after");
            assert!(s.text().contains("after"), "{}", s.text());
        }
        assert_eq!(server.text(), mirror.text());
    }
}
