//! Terminal fidelity against vttest, the VT100/VT102 conformance program (Debian's
//! package): menus 1 (cursor movements), 2 (screen features) and 8 (VT102 insert and
//! delete) run in a bioxen VM's pane and in a tmux pane, with the same keys, and every
//! screen they settle on must show the same text with the cursor in the same place.
//!
//! Where tmux departs from the VT100 manual, bioxen follows the manual: those screens
//! are listed in [`DEPARTURES`] with what the manual says they show, and TESTING.md
//! says why.

use crate::common;

use std::time::{Duration, Instant};

use bioxen::vm::Size;
use bioxen::{Manager, VmKind, VmOptions};
use common::tmux::Tmux;

const ROWS: u16 = 24;
const COLS: u16 = 80;

/// A screen where tmux departs from the VT100 manual: recognised by `marker`, it must
/// show `expected` on these rows (0-based) in bioxen, and the same as tmux elsewhere.
struct Departure {
    marker: &'static str,
    why: &'static str,
    expected: &'static [(usize, &'static str)],
}

const DEPARTURES: &[Departure] = &[Departure {
    marker: "This line should be the one above the bottom of the screen.",
    why: "DECSTBM homes the cursor to the top margin in origin mode (VT100 User Guide, \
          DECSTBM and DECOM); tmux homes it to the screen's top-left corner",
    expected: &[
        (1, ""),
        (
            22,
            "This line should be the one above the bottom of the screen. Push <RETURN>",
        ),
        (
            23,
            "Origin mode test. This line should be at the bottom of the screen.",
        ),
    ],
}];

/// One settled screen: its rows trimmed on the right, and the cursor (row, column).
#[derive(PartialEq, Eq, Debug, Clone)]
struct Shown {
    rows: Vec<String>,
    cursor: (u16, u16),
}

impl Shown {
    fn new(text: &str, cursor: (u16, u16)) -> Shown {
        let mut rows: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        rows.resize(ROWS as usize, String::new());
        Shown { rows, cursor }
    }

    fn has(&self, text: &str) -> bool {
        self.rows.iter().any(|r| r.contains(text))
    }

    fn show(&self) -> String {
        format!("cursor {:?}\n{}", self.cursor, self.rows.join("\n"))
    }
}

/// vttest in a bioxen VM and in a tmux pane, fed the same keys.
struct Pair {
    manager: Manager,
    id: bioxen::VmId,
    tmux: Tmux,
}

impl Pair {
    fn bioxen_screen(&self) -> Shown {
        self.manager
            .with_screen(self.id, |s| {
                let vt = s.vt();
                let text = vt.rows(0, COLS).collect::<Vec<_>>().join("\n");
                // vt100 keeps a cursor that has just written the last column past it,
                // where tmux shows it on that column.
                let (row, col) = vt.cursor_position();
                Shown::new(&text, (row, col.min(COLS - 1)))
            })
            .unwrap()
    }

    fn tmux_screen(&self) -> Shown {
        Shown::new(&self.tmux.screen_drawn(), self.tmux.cursor())
    }

    /// Both screens, once neither has changed for a while: vttest draws a screen,
    /// then waits for a key.
    async fn settle(&self) -> (Shown, Shown) {
        let deadline = Instant::now() + common::WAIT;
        let mut last = (self.bioxen_screen(), self.tmux_screen());
        let mut stable_since = Instant::now();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = (self.bioxen_screen(), self.tmux_screen());
            if now != last {
                last = now;
                stable_since = Instant::now();
            } else if stable_since.elapsed() > Duration::from_millis(300) {
                return last;
            }
        }
        panic!(
            "the screens never settled:\n--- bioxen\n{}\n--- tmux\n{}",
            last.0.show(),
            last.1.show()
        );
    }

    fn send(&self, text: &str) {
        self.manager.send_input(self.id, text).unwrap();
        self.tmux.type_text(text);
    }
}

/// What is wrong with a screen bioxen shows, if anything.
fn compare(b: &Shown, t: &Shown) -> Option<String> {
    let Some(departure) = DEPARTURES.iter().find(|d| b.has(d.marker)) else {
        return (b != t).then(|| "differs from tmux".to_string());
    };
    let mut wrong = Vec::new();
    for (i, (ours, theirs)) in b.rows.iter().zip(&t.rows).enumerate() {
        match departure.expected.iter().find(|(row, _)| *row == i) {
            Some((_, want)) if ours != want => {
                wrong.push(format!("row {i} is {ours:?}, the manual says {want:?}"))
            }
            Some(_) => {}
            None if ours != theirs => wrong.push(format!("row {i} differs from tmux")),
            None => {}
        }
    }
    (!wrong.is_empty()).then(|| format!("({}): {}", departure.why, wrong.join("; ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vttest_screens_match_tmux() {
    common::require_program("vttest", "vttest");
    let manager = common::manager();
    let id = manager
        .create_interactive_vm(
            Some("vttest"),
            VmKind::Local,
            VmOptions {
                command: Some(vec!["vttest".into()]),
                size: Size::new(ROWS, COLS),
                ..VmOptions::default()
            },
        )
        .await
        .unwrap();
    let tmux = Tmux::start("vttest", COLS, ROWS, "vttest");
    let pair = Pair { manager, id, tmux };
    let menu_prompt = "Enter choice number";
    let mut problems = Vec::new();
    let mut compared = 0;
    for menu in ["1", "2", "8"] {
        let (b, t) = pair.settle().await;
        assert!(
            b.has(menu_prompt) && t.has(menu_prompt),
            "not at the main menu:\n--- bioxen\n{}\n--- tmux\n{}",
            b.show(),
            t.show()
        );
        pair.send(&format!("{menu}\r"));
        for screen in 1.. {
            let (b, t) = pair.settle().await;
            if b.has(menu_prompt) && t.has(menu_prompt) {
                break;
            }
            assert!(screen < 40, "menu {menu} never returned to the main menu");
            compared += 1;
            if let Some(problem) = compare(&b, &t) {
                problems.push(format!(
                    "menu {menu}, screen {screen} {problem}:\n--- bioxen\n{}\n--- tmux\n{}",
                    b.show(),
                    t.show()
                ));
            }
            pair.send("\r");
        }
    }
    // Menus 1, 2 and 8 of vttest 2.7 have 35 screens between them; fewer means the
    // keys went astray and the test compared less than it says.
    assert_eq!(compared, 35, "screens compared");
    assert!(
        problems.is_empty(),
        "{} of {compared} screens are wrong:\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
