//! What the dashboard asks of the server when the user acts: keys and server updates
//! go into the app, and the requests and calls it returns are compared with what the
//! user meant. No server runs; the end-to-end tests show the server carrying them out.

use crate::common;

use bioxen::client::Update;
use bioxen::keymap::Keymap;
use bioxen::protocol::{Event, HistoryOf, Request, Window};
use bioxen::ui::app::{App, Focus, Msg};
use bioxen::ui::effect::{Call, Done, Effect};
use bioxen::{VmInfo, VmState};
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

fn vm(id: &str, state: VmState) -> VmInfo {
    VmInfo {
        uptime_secs: 5,
        ..common::vm_info(id, state, Some(100))
    }
}

/// A dashboard that has received the list `vms`, and the effects that caused.
fn dashboard(vms: Vec<VmInfo>) -> (App, Vec<Effect>) {
    let mut app = App::new(Keymap::default(), Rect::new(0, 0, 100, 30));
    let effects = app.update(Msg::Server(Update::Event(Event::Vms(vms))));
    (app, effects)
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(Msg::Terminal(TermEvent::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))))
}

/// Types `text` one key at a time; returns every effect the keys had.
fn type_keys(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| key(app, KeyCode::Char(c)))
        .collect()
}

/// A VM's alert, as the server sends it.
fn alert(app: &mut App, id: &str, alert: bioxen::protocol::Alert) -> Vec<Effect> {
    app.update(Msg::Server(Update::Event(Event::Alert {
        vm: common::vm_id(id),
        alert,
    })))
}

fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    app.update(Msg::Terminal(TermEvent::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    ))))
}

fn notify(r: Request) -> Effect {
    Effect::Notify(r)
}

#[test]
fn the_selected_vm_is_watched_at_the_pane_size_and_only_it() {
    let (mut app, effects) = dashboard(vec![vm("a", VmState::Running), vm("b", VmState::Running)]);
    let size = app.pane_size;
    assert_eq!(
        effects,
        vec![
            notify(Request::Resize {
                vm: common::vm_id("a").into(),
                rows: size.rows,
                cols: size.cols
            }),
            notify(Request::Watch {
                vm: common::vm_id("a").into()
            }),
            chart_of("a", Window::TenMinutes),
        ],
        "the first VM is selected and its screen and chart asked for, at this pane's size"
    );
    assert_eq!(
        key(&mut app, KeyCode::Down),
        vec![
            notify(Request::Unwatch {
                vm: common::vm_id("a").into()
            }),
            notify(Request::Resize {
                vm: common::vm_id("b").into(),
                rows: size.rows,
                cols: size.cols
            }),
            notify(Request::Watch {
                vm: common::vm_id("b").into()
            }),
            chart_of("b", Window::TenMinutes),
        ],
        "moving down stops a's screen and asks for b's"
    );
}

/// The details box's chart asks for the selected VM's history.
fn chart_of(name: &str, window: Window) -> Effect {
    Effect::Call(Call::History {
        of: HistoryOf::Vm(common::vm_id(name).into()),
        window,
    })
}

/// The chart is asked for when its window changes and when a list brings news a
/// step after the last ask, never by the clock alone: an idle dashboard sends nothing.
#[test]
fn the_chart_asks_for_history_on_news_and_windows_never_on_ticks() {
    let t0 = std::time::Instant::now();
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    let series = bioxen::protocol::Series {
        step_secs: 1,
        cpu_percent: vec![Some(5.0)],
        ..Default::default()
    };
    let answer = |app: &mut App, window, at| {
        app.update_at(
            Msg::Done(Done::History {
                of: HistoryOf::Vm(common::vm_id("a").into()),
                window,
                result: Ok(series.clone()),
            }),
            at,
        )
    };
    assert_eq!(answer(&mut app, Window::TenMinutes, t0), vec![]);
    let later = t0 + std::time::Duration::from_secs(5);
    assert_eq!(app.update_at(Msg::Tick, later), vec![], "ticks ask nothing");
    let list = |cpu: f32| {
        let mut a = vm("a", VmState::Running);
        a.cpu_percent = Some(cpu);
        Msg::Server(Update::Event(Event::Vms(vec![a])))
    };
    assert_eq!(
        app.update_at(list(30.0), later),
        vec![chart_of("a", Window::TenMinutes)],
        "a list a step later with new figures brings news"
    );
    assert_eq!(answer(&mut app, Window::TenMinutes, later), vec![]);
    let later = later + std::time::Duration::from_secs(5);
    assert_eq!(
        app.update_at(list(30.0), later),
        vec![],
        "the same figures: nothing new to chart"
    );
    assert_eq!(
        app.update_at(list(40.0), later),
        vec![chart_of("a", Window::TenMinutes)],
    );
    assert_eq!(answer(&mut app, Window::TenMinutes, later), vec![]);
    assert_eq!(
        app.update_at(list(50.0), later),
        vec![],
        "the same second: the series is current"
    );
    let effects = app.update_at(
        Msg::Terminal(TermEvent::Key(KeyEvent::new(
            KeyCode::Char(']'),
            KeyModifiers::NONE,
        ))),
        later,
    );
    assert_eq!(
        effects,
        vec![chart_of("a", Window::Hour)],
        "] widens the window"
    );
    assert_eq!(app.chart.window, Window::Hour);
    assert_eq!(answer(&mut app, Window::Hour, later), vec![]);
    let soon = later + std::time::Duration::from_secs(2);
    assert_eq!(
        app.update_at(list(60.0), soon),
        vec![],
        "an hour's chart has ten-second steps"
    );
}

#[test]
fn attaching_sends_typing_to_the_vm_and_detaching_stops_it() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![notify(Request::Attach {
            vm: common::vm_id("a").into()
        })]
    );
    assert_eq!(app.focus, Focus::Terminal);
    assert_eq!(
        key(&mut app, KeyCode::Char('x')),
        vec![notify(Request::SendInput {
            vm: common::vm_id("a").into(),
            data: b"x".to_vec()
        })],
        "a key in the pane is the VM's, even one the list binds (x kills there)"
    );
    assert_eq!(
        ctrl(&mut app, 'b'),
        vec![],
        "the prefix alone sends nothing"
    );
    assert_eq!(
        key(&mut app, KeyCode::Char('d')),
        vec![notify(Request::Detach {
            vm: common::vm_id("a").into()
        })]
    );
    assert_eq!(app.focus, Focus::List);
    assert_eq!(
        key(&mut app, KeyCode::Char('j')),
        vec![],
        "in the list, keys are the dashboard's"
    );
}

#[test]
fn typing_into_an_ended_vm_says_how_to_restart_it_and_sends_nothing() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Exited(3))]);
    key(&mut app, KeyCode::Enter);
    assert_eq!(key(&mut app, KeyCode::Char('1')), vec![]);
    let (text, _) = app.message.clone().expect("a message");
    assert!(text.contains("restarts it"), "{text}");
    assert_eq!(
        key(&mut app, KeyCode::Esc),
        vec![],
        "nothing goes to an ended VM"
    );
}

#[test]
fn kill_asks_first_and_only_yes_kills() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    assert_eq!(key(&mut app, KeyCode::Char('x')), vec![]);
    assert!(app.overlay.is_some(), "a confirmation is shown");
    assert_eq!(key(&mut app, KeyCode::Char('n')), vec![]);
    assert!(app.overlay.is_none());
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(
        key(&mut app, KeyCode::Char('y')),
        vec![Effect::Call(Call::Kill(common::target("a")))]
    );
    app.update(Msg::Done(Done::Info("a: killed by SIGTERM".into())));
    assert_eq!(
        app.message.as_ref().map(|m| m.0.as_str()),
        Some("a: killed by SIGTERM"),
        "how the call ended is shown"
    );
}

#[test]
fn quitting_leaves_vms_running_unless_asked_to_end_them() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Char('q'));
    assert!(!app.quit, "running VMs: the dashboard asks first");
    assert_eq!(key(&mut app, KeyCode::Enter), vec![], "leave: nothing ends");
    assert!(app.quit);

    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(
        key(&mut app, KeyCode::Char('e')),
        vec![Effect::Call(Call::EndAll)]
    );
    assert!(!app.quit, "the dashboard waits for the VMs to end");
    app.update(Msg::Done(Done::EndedAll));
    assert!(app.quit);
}

#[test]
fn a_quit_whose_task_panics_still_quits_and_says_why() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Char('q'));
    key(&mut app, KeyCode::Char('e'));
    app.update(Msg::Done(Done::Panicked {
        what: Call::EndAll.what(),
        text: "boom".into(),
    }));
    assert!(
        app.quit,
        "a panicking quit must not leave the dashboard hanging"
    );
    let (text, _) = app.message.clone().unwrap();
    assert!(text.contains("boom") && text.contains("end all"), "{text}");
}

#[test]
fn a_resized_terminal_resizes_every_vm_once() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running), vm("b", VmState::Running)]);
    let effects = app.update(Msg::Terminal(TermEvent::Resize(140, 50)));
    let size = app.pane_size;
    assert_eq!(
        effects,
        ["a", "b"]
            .iter()
            .map(|id| notify(Request::Resize {
                vm: common::vm_id(id).into(),
                rows: size.rows,
                cols: size.cols
            }))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        app.update(Msg::Terminal(TermEvent::Resize(140, 50))),
        vec![],
        "the same size again changes nothing"
    );
}

#[test]
fn a_pasted_text_goes_to_the_vm_in_one_request() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Enter);
    let effects = app.update(Msg::Terminal(TermEvent::Paste("x = 1\ny = 2".into())));
    assert_eq!(effects.len(), 1, "{effects:?}");
    let Effect::Notify(Request::SendInput { vm, data }) = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(common::vm_name(vm), "a");
    let text = String::from_utf8_lossy(data);
    assert!(text.contains("x = 1") && text.contains("y = 2"), "{text:?}");
}

fn resizes(effects: &[Effect]) -> Vec<(String, u16, u16)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Request::Resize { vm, rows, cols }) => {
                Some((common::vm_name(vm), *rows, *cols))
            }
            _ => None,
        })
        .collect()
}

fn sent_to(effects: &[Effect]) -> Vec<String> {
    let mut ids: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Notify(Request::SendInput { vm, .. }) => Some(common::vm_name(vm)),
            _ => None,
        })
        .collect();
    ids.sort();
    ids
}

fn prefix(app: &mut App, code: KeyCode) -> Vec<Effect> {
    ctrl(app, 'b');
    key(app, code)
}

#[test]
fn a_grid_of_marked_vms_watches_each_at_its_tile_size() {
    let (mut app, _) = dashboard(vec![
        vm("a", VmState::Running),
        vm("b", VmState::Running),
        vm("c", VmState::Running),
    ]);
    let pane = app.pane_size;
    key(&mut app, KeyCode::Char(' '));
    assert_eq!(app.current, Some(common::row("b")), "marking moves down");
    key(&mut app, KeyCode::Char(' '));
    let effects = key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.grid, Some(0));
    assert_eq!(
        app.grids[0].vms,
        vec![common::vm_id("a"), common::vm_id("b")],
        "the marked VMs, in list order"
    );
    assert!(app.marked.is_empty(), "marks are used up");
    let tiles = app.tiles();
    assert_eq!(tiles.len(), 2);
    let sized = resizes(&effects);
    for t in &tiles {
        let vm = app.grids[0].vms[t.index];
        let id = app.name_of(vm);
        let size = t.size();
        assert!(
            sized.contains(&(id.clone(), size.rows, size.cols)),
            "{id} is sized to its tile {size:?}: {sized:?}"
        );
        // The focused tile gets every byte; the others a glance at the screen.
        let watch = match t.index == app.grids[0].focus {
            true => Request::Watch { vm: vm.into() },
            false => Request::Glance { vm: vm.into() },
        };
        assert!(effects.contains(&notify(watch)), "{effects:?}");
    }
    assert!(
        effects.contains(&notify(Request::Unwatch {
            vm: common::vm_id("c").into()
        })),
        "an unmarked VM is not shown"
    );
    // Moving the keys to the other tile swaps how the two are watched.
    let effects = prefix(&mut app, KeyCode::Right);
    assert!(
        effects.contains(&notify(Request::Watch {
            vm: common::vm_id("b").into()
        })),
        "{effects:?}"
    );
    assert!(
        effects.contains(&notify(Request::Glance {
            vm: common::vm_id("a").into()
        })),
        "{effects:?}"
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Notify(Request::Unwatch { .. }))),
        "no tile goes blank in between: {effects:?}"
    );
    prefix(&mut app, KeyCode::Left);
    // Leaving the grid gives the tiles' VMs the pane's size back.
    let effects = prefix(&mut app, KeyCode::Char('d'));
    assert_eq!(app.grid, None);
    assert_eq!(app.focus, Focus::List);
    let sized = resizes(&effects);
    for id in ["a", "b"] {
        assert!(
            sized.contains(&(id.to_string(), pane.rows, pane.cols)),
            "{id} back to {pane:?}: {sized:?}"
        );
    }
    // The grid is still a tab after the VMs' tabs.
    key(&mut app, KeyCode::Char('3'));
    assert_eq!(app.grid, Some(0), "tab 3 is the grid");
}

#[test]
fn broadcast_types_into_every_tile_but_the_excluded_ones() {
    let (mut app, _) = dashboard(vec![
        vm("a", VmState::Running),
        vm("b", VmState::Running),
        vm("c", VmState::Running),
        vm("d", VmState::Exited(0)),
    ]);
    key(&mut app, KeyCode::Char('*'));
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(
        app.grids[0].vms.len(),
        4,
        "* marks every VM, ended ones too"
    );
    assert_eq!(sent_to(&key(&mut app, KeyCode::Char('x'))), vec!["a"]);
    prefix(&mut app, KeyCode::Char('b'));
    assert_eq!(
        sent_to(&key(&mut app, KeyCode::Char('x'))),
        vec!["a", "b", "c"],
        "every running tile"
    );
    let pasted = app.update(Msg::Terminal(TermEvent::Paste("x = 7\n".into())));
    assert_eq!(sent_to(&pasted), vec!["a", "b", "c"], "pastes too");
    // Leave b out: typing from a still goes to a and c.
    prefix(&mut app, KeyCode::Right);
    assert_eq!(app.current, Some(common::row("b")));
    prefix(&mut app, KeyCode::Char('e'));
    assert_eq!(
        sent_to(&key(&mut app, KeyCode::Char('y'))),
        vec!["b"],
        "typing in the excluded tile goes to it alone"
    );
    prefix(&mut app, KeyCode::Left);
    assert_eq!(sent_to(&key(&mut app, KeyCode::Char('y'))), vec!["a", "c"]);
    prefix(&mut app, KeyCode::Char('b'));
    assert_eq!(sent_to(&key(&mut app, KeyCode::Char('y'))), vec!["a"]);
}

#[test]
fn zoom_and_layouts_resize_the_tiles_vms() {
    let vms: Vec<VmInfo> = (0..4)
        .map(|i| vm(&format!("vm{i}"), VmState::Running))
        .collect();
    let (mut app, _) = dashboard(vms);
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.grids[0].vms.len(), 4, "none marked: the running VMs");
    let body = app.areas().pane;
    let effects = prefix(&mut app, KeyCode::Char('z'));
    let sized = resizes(&effects);
    assert!(
        sized.contains(&("vm0".to_string(), body.height - 1, body.width)),
        "the zoomed tile's VM gets the whole grid: {sized:?}"
    );
    assert!(
        effects.contains(&notify(Request::Unwatch {
            vm: common::vm_id("vm1").into()
        })),
        "hidden tiles are not watched"
    );
    prefix(&mut app, KeyCode::Char('z'));
    let effects = prefix(&mut app, KeyCode::Char(' '));
    assert_eq!(
        app.grids[0].layout,
        bioxen::ui::grid::Layout::EvenHorizontal
    );
    let sized = resizes(&effects);
    assert_eq!(
        sized.len(),
        4,
        "side by side: every tile changes: {sized:?}"
    );
    assert!(sized.iter().all(|(_, rows, _)| *rows == body.height - 1));
}

#[test]
fn a_click_on_a_tile_moves_the_keys_there() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running), vm("b", VmState::Running)]);
    key(&mut app, KeyCode::Char('g'));
    let b = app.tiles()[1];
    let click = crossterm::event::MouseEvent {
        kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: b.body.x + 2,
        row: b.body.y + 2,
        modifiers: KeyModifiers::NONE,
    };
    let effects = app.update(Msg::Terminal(TermEvent::Mouse(click)));
    assert_eq!(app.current, Some(common::row("b")));
    assert!(effects.contains(&notify(Request::Attach {
        vm: common::vm_id("b").into()
    })));
    assert_eq!(sent_to(&key(&mut app, KeyCode::Char('x'))), vec!["b"]);
}

#[test]
fn chosen_alerts_go_to_the_desktop_and_mark_unseen_vms() {
    use bioxen::config::{AlertKind, NotifySetting};
    use bioxen::protocol::Alert;
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running), vm("b", VmState::Running)]);
    app.config.ui.notify = NotifySetting::Only(vec![AlertKind::Bell, AlertKind::Exit]);
    assert_eq!(
        alert(&mut app, "b", Alert::Bell),
        vec![Effect::Desktop("b: bell".into())]
    );
    assert_eq!(
        alert(&mut app, "b", Alert::Idle),
        vec![],
        "idle is not chosen"
    );
    assert_eq!(
        app.marks[&common::vm_id("b")].flags(),
        "!✓",
        "b is not the VM shown: marked"
    );
    alert(&mut app, "a", Alert::Bell);
    assert!(
        !app.marks.contains_key(&common::vm_id("a")),
        "the VM shown is not marked"
    );
    let effects = app.update(Msg::Server(Update::Event(Event::State {
        vm: common::vm_id("b"),
        state: VmState::Exited(3),
    })));
    assert!(
        effects.contains(&Effect::Desktop("b: exited(3)".into())),
        "{effects:?}"
    );
    key(&mut app, KeyCode::Down);
    assert!(
        !app.marks.contains_key(&common::vm_id("b")),
        "looking at b clears its marks"
    );
    let text = bioxen::ui::effect::desktop_notification("4;1;50\x07\x1b]0;x");
    assert_eq!(
        text, "\x1b]9;bioxen: 4;1;50]0;x\x07",
        "nothing ends or redirects the OSC"
    );
}

#[test]
fn overall_progress_goes_to_the_users_terminal_when_it_changes() {
    use bioxen::protocol::{Progress, ProgressState};
    let with = |id: &str, percent: u8, seq: u64| VmInfo {
        progress: Some(Progress {
            state: ProgressState::Normal,
            percent,
        }),
        progress_seq: seq,
        ..vm(id, VmState::Running)
    };
    let (mut app, effects) = dashboard(vec![with("a", 20, 1), with("b", 60, 1)]);
    let normal = |percent| {
        Effect::OuterProgress(Some(Progress {
            state: ProgressState::Normal,
            percent,
        }))
    };
    assert!(effects.contains(&normal(40)), "the mean: {effects:?}");
    let effects = app.update(Msg::Server(Update::Event(Event::Vms(vec![
        with("a", 20, 1),
        with("b", 60, 2),
    ]))));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::OuterProgress(_))),
        "unchanged: nothing sent"
    );
    let effects = app.update(Msg::Server(Update::Event(Event::Vms(vec![
        vm("a", VmState::Exited(0)),
        with("b", 60, 2),
    ]))));
    assert!(effects.contains(&normal(60)), "{effects:?}");
}

#[test]
fn scrolled_back_the_view_stays_put_while_output_flows_and_keys_stay_out_of_the_vm() {
    use bioxen::term::Screen;
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Enter);
    let size = app.pane_size;
    let mut screen = Screen::new(size, 1000);
    for i in 0..200 {
        screen.feed(format!("line {i}\r\n").as_bytes());
    }
    app.mirrors.insert(common::vm_id("a"), screen);
    prefix(&mut app, KeyCode::Char('['));
    key(&mut app, KeyCode::PageUp);
    let top = |app: &App| {
        let s = &app.mirrors[&common::vm_id("a")];
        s.view(app.scroll.unwrap()).screen().contents()
    };
    let before = top(&app);
    assert!(before.contains("line 1"), "{before}");
    let output: Vec<u8> = (200..260)
        .flat_map(|i| format!("line {i}\r\n").into_bytes())
        .collect();
    app.update(Msg::Server(Update::Output {
        vm: common::vm_id("a"),
        bytes: output,
    }));
    assert_eq!(top(&app), before, "the same lines, though 60 arrived");
    // A flood comes as the server's whole screen a frame: the view stays put too.
    let mut theirs = Screen::new(size, 1000);
    for i in 0..320 {
        theirs.feed(format!("line {i}\r\n").as_bytes());
    }
    app.update(Msg::Server(Update::Event(Event::Screen {
        vm: common::vm_id("a"),
        snapshot: theirs.snapshot(),
    })));
    assert!(app.mirrors[&common::vm_id("a")].text().contains("line 319"));
    assert_eq!(
        top(&app),
        before,
        "the same lines, though a newer screen came"
    );
    // A watch of a long history starts with the screen alone, its history right
    // after: the view waits for the history, and stays on the same lines.
    let whole = theirs.snapshot();
    for snapshot in [whole.ahead_of_history(), whole] {
        app.update(Msg::Server(Update::Event(Event::Screen {
            vm: common::vm_id("a"),
            snapshot,
        })));
    }
    assert_eq!(
        top(&app),
        before,
        "the same lines, though the screen came ahead of its history"
    );
    assert_eq!(
        key(&mut app, KeyCode::Char('x')),
        vec![],
        "a key in scroll mode is not the VM's"
    );
    assert!(app.scroll.is_some(), "and does not leave scroll mode");
    key(&mut app, KeyCode::Char('q'));
    assert!(app.scroll.is_none());
    assert_eq!(sent_to(&key(&mut app, KeyCode::Char('x'))), vec!["a"]);
}

#[test]
fn the_chooser_lists_vms_and_grids_and_filters_as_you_type() {
    use bioxen::ui::app::{Overlay, TabId};
    let (mut app, _) = dashboard(vec![
        vm("alpha", VmState::Running),
        vm("beta", VmState::Running),
        vm("gamma", VmState::Exited(1)),
    ]);
    key(&mut app, KeyCode::Enter);
    prefix(&mut app, KeyCode::Char('g'));
    assert_eq!(app.grid, Some(0), "a grid of the running VMs");
    prefix(&mut app, KeyCode::Char('w'));
    let Some(Overlay::Chooser(c)) = &app.overlay else {
        panic!("{:?}", app.overlay)
    };
    assert_eq!(
        app.chooser_items(&c.filter)[c.selected].0,
        TabId::Grid(0),
        "opens on the tab shown"
    );
    assert_eq!(app.chooser_items("").len(), 4, "3 VMs and a grid");
    type_keys(&mut app, "exited");
    let items = app.chooser_items("exited");
    assert_eq!(items.len(), 1, "{items:?}");
    let effects = key(&mut app, KeyCode::Enter);
    assert!(app.overlay.is_none());
    assert_eq!(app.grid, None);
    assert_eq!(app.current, Some(common::row("gamma")));
    assert!(
        effects.contains(&notify(Request::Watch {
            vm: common::vm_id("gamma").into()
        })),
        "{effects:?}"
    );
}

#[test]
fn search_in_scrollback_finds_up_and_down_and_again() {
    use bioxen::term::Screen;
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Enter);
    let mut screen = Screen::new(app.pane_size, 1000);
    for i in 0..300 {
        let text = match i {
            40 | 120 => format!("epoch {i}: Loss 0.5"),
            _ => format!("line {i}"),
        };
        screen.feed(format!("{text}\r\n").as_bytes());
    }
    app.mirrors.insert(common::vm_id("a"), screen);
    let top_line = |app: &App| {
        let s = &app.mirrors[&common::vm_id("a")];
        s.view(app.scroll.unwrap_or(0))
            .screen()
            .contents()
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    prefix(&mut app, KeyCode::Char('['));
    for c in "?loss".chars() {
        assert_eq!(key(&mut app, KeyCode::Char(c)), vec![], "typed, not sent");
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        top_line(&app),
        "epoch 120: Loss 0.5",
        "the nearest match above"
    );
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(top_line(&app), "epoch 40: Loss 0.5", "n: further up");
    key(&mut app, KeyCode::Char('N'));
    assert_eq!(top_line(&app), "epoch 120: Loss 0.5", "N: back down");
    type_keys(&mut app, "/Loss");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        top_line(&app),
        "epoch 40: Loss 0.5",
        "down from 120 wraps to 40"
    );
    type_keys(&mut app, "/nowhere");
    key(&mut app, KeyCode::Enter);
    assert!(app.search.as_ref().unwrap().missed);
    assert_eq!(top_line(&app), "epoch 40: Loss 0.5", "a miss stays put");
}

#[test]
fn lines_selected_in_scrollback_are_copied_through_the_terminal() {
    use bioxen::term::Screen;
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Enter);
    let mut screen = Screen::new(app.pane_size, 1000);
    for i in 0..100 {
        screen.feed(format!("\x1b[3{}mrow {i}\x1b[m\r\n", i % 8).as_bytes());
    }
    app.mirrors.insert(common::vm_id("a"), screen);
    prefix(&mut app, KeyCode::Char('['));
    type_keys(&mut app, "?row 42");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('V'));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(
        key(&mut app, KeyCode::Char('j')),
        vec![],
        "selecting sends nothing"
    );
    let effects = key(&mut app, KeyCode::Char('y'));
    assert_eq!(
        effects,
        vec![Effect::Clipboard("row 42\nrow 43\nrow 44".into())],
        "three lines, without their colours"
    );
    assert!(
        app.selection.is_none() && app.scroll.is_some(),
        "back to scrolling"
    );
    assert!(
        app.message.as_ref().unwrap().0.contains("copied 3 lines"),
        "{:?}",
        app.message
    );
}

/// A mirror of VM "a" in scroll mode at the search for `query`: rows of words, and a
/// line longer than the 100-column pane that wraps.
fn scrolled_to(query: &str) -> App {
    use bioxen::term::Screen;
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Enter);
    let mut screen = Screen::new(app.pane_size, 1000);
    for i in 0..50 {
        screen.feed(format!("row {i} alpha beta\r\n").as_bytes());
    }
    screen.feed(
        format!(
            "{}WRAPPED tail\r\n> ",
            "w".repeat(app.pane_size.cols as usize - 7)
        )
        .as_bytes(),
    );
    app.mirrors.insert(common::vm_id("a"), screen);
    prefix(&mut app, KeyCode::Char('['));
    type_keys(&mut app, &format!("?{query}"));
    key(&mut app, KeyCode::Enter);
    app
}

fn copied(effects: Vec<Effect>) -> String {
    match effects.as_slice() {
        [Effect::Clipboard(text)] => text.clone(),
        other => panic!("not one copy: {other:?}"),
    }
}

#[test]
fn characters_are_selected_with_motions_and_copied() {
    let mut app = scrolled_to("row 40");
    key(&mut app, KeyCode::Char('v'));
    type_keys(&mut app, "we");
    assert_eq!(
        copied(key(&mut app, KeyCode::Char('y'))),
        "row 40",
        "from the match to the end of the next word"
    );
    let mut app = scrolled_to("row 40");
    key(&mut app, KeyCode::Char('v'));
    type_keys(&mut app, "j$");
    assert_eq!(
        copied(key(&mut app, KeyCode::Char('y'))),
        "row 40 alpha beta\nrow 41 alpha beta",
        "across rows, to the end of the next"
    );
}

#[test]
fn a_rectangle_takes_the_same_columns_of_each_row() {
    let mut app = scrolled_to("row 45");
    ctrl(&mut app, 'v');
    type_keys(&mut app, "jjlllll");
    assert_eq!(
        copied(key(&mut app, KeyCode::Char('y'))),
        "row 45\nrow 46\nrow 47",
        "six columns of three rows"
    );
}

#[test]
fn a_selection_across_a_soft_wrap_is_copied_as_one_line() {
    let mut app = scrolled_to("WRAPPED");
    let ws = "w".repeat(usize::from(app.pane_size.cols) - 7);
    type_keys(&mut app, "Vj");
    let text = copied(key(&mut app, KeyCode::Char('y')));
    assert_eq!(text, format!("{ws}WRAPPED tail"));
    let mut app = scrolled_to("WRAPPED");
    key(&mut app, KeyCode::Char('v'));
    type_keys(&mut app, "ee");
    assert_eq!(copied(key(&mut app, KeyCode::Char('y'))), "WRAPPED tail");
}

/// Filtering the list away from the selected VM selects the first that passes as
/// moving onto it would: its screen is asked for (the pane is never left blank), the
/// old one's dropped, and the VM in front of the user is not flagged as unseen.
#[test]
fn a_filter_that_hides_the_selection_shows_the_first_match() {
    let (mut app, _) = dashboard(vec![
        vm("lua-1", VmState::Running),
        vm("lua-2", VmState::Running),
        vm("lua-3", VmState::Running),
    ]);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.current, Some(common::row("lua-3")));
    key(&mut app, KeyCode::Char('/'));
    let mut effects = type_keys(&mut app, "lua-1");
    effects.extend(key(&mut app, KeyCode::Enter));
    assert_eq!(app.current, Some(common::row("lua-1")));
    assert!(
        effects.contains(&notify(Request::Watch {
            vm: common::vm_id("lua-1").into()
        })) && effects.contains(&notify(Request::Unwatch {
            vm: common::vm_id("lua-3").into()
        })),
        "{effects:?}"
    );
    // Output from the VM shown is seen.
    app.update(Msg::Server(Update::Event(Event::Activity {
        vm: common::vm_id("lua-1"),
    })));
    assert!(!app.unseen.contains(&common::vm_id("lua-1")));
}

/// Tiles on the grid page shown are in front of the user: their bells, prompts and
/// ends mark nothing, as tmux flags no window on screen. A VM off the page is marked.
#[test]
fn tiles_on_screen_get_no_alert_marks() {
    use bioxen::protocol::Alert;
    let (mut app, _) = dashboard(vec![
        vm("a", VmState::Running),
        vm("b", VmState::Running),
        vm("c", VmState::Running),
    ]);
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(
        app.grids[0].vms,
        vec![common::vm_id("a"), common::vm_id("b")]
    );
    for raised in [Alert::Idle, Alert::Bell] {
        for id in ["a", "b", "c"] {
            alert(&mut app, id, raised.clone());
        }
    }
    app.update(Msg::Server(Update::Event(Event::State {
        vm: common::vm_id("b"),
        state: VmState::Exited(0),
    })));
    assert!(
        !app.marks.contains_key(&common::vm_id("a"))
            && !app.marks.contains_key(&common::vm_id("b")),
        "{:?}",
        app.marks
    );
    assert_eq!(
        app.marks[&common::vm_id("c")].flags(),
        "!✓",
        "c is not on the grid"
    );
    alert(&mut app, "c", Alert::Failed);
    assert_eq!(
        app.marks[&common::vm_id("c")].flags(),
        "!✖",
        "an error replaces the check"
    );
}

/// Progress reported before this dashboard opened has used up part of its time: a
/// report 14 s old shows for one second more, not for 15.
#[test]
fn progress_from_before_the_dashboard_opened_times_out_on_the_vms_clock() {
    use bioxen::protocol::{Progress, ProgressState};
    let aged = |ms: u64| VmInfo {
        progress: Some(Progress {
            state: ProgressState::Normal,
            percent: 100,
        }),
        progress_seq: 3,
        progress_age_ms: ms,
        ..vm("a", VmState::Running)
    };
    let (app, _) = dashboard(vec![aged(14_000)]);
    assert!(app.progress(&app.rows[0]).is_some());
    let tick = app.next_tick().expect("a tick for the report going stale");
    assert!(
        tick <= std::time::Instant::now() + std::time::Duration::from_millis(1100),
        "the report goes stale within a second, not in 15"
    );
    let (app, _) = dashboard(vec![aged(16_000)]);
    assert!(app.progress(&app.rows[0]).is_none(), "stale on arrival");
}

/// A rename the server refuses keeps the dialog open with the name typed and says
/// why; C-u clears the field, and the next Enter asks again.
#[test]
fn a_refused_rename_keeps_the_dialog_and_its_text() {
    use bioxen::ui::app::Overlay;
    use bioxen::ui::effect::Done;
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running), vm("b", VmState::Running)]);
    key(&mut app, KeyCode::Char('R'));
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Char('b'));
    let effects = key(&mut app, KeyCode::Enter);
    assert!(
        effects.contains(&Effect::Call(Call::Rename {
            target: common::target("a"),
            new: "b".into()
        })),
        "{effects:?}"
    );
    app.update(Msg::Done(Done::Renamed {
        target: common::target("a"),
        new: "b".into(),
        result: Err("b is taken".into()),
    }));
    match &app.overlay {
        Some(Overlay::Rename(form)) => {
            assert_eq!(form.name, "b", "the name typed is kept");
            assert_eq!(form.error.as_deref(), Some("b is taken"));
        }
        other => panic!("the dialog closed: {other:?}"),
    }
    ctrl(&mut app, 'u');
    type_keys(&mut app, "train");
    let effects = key(&mut app, KeyCode::Enter);
    assert!(
        effects.contains(&Effect::Call(Call::Rename {
            target: common::target("a"),
            new: "train".into()
        })),
        "C-u cleared the field: {effects:?}"
    );
    app.update(Msg::Done(Done::Renamed {
        target: common::target("a"),
        new: "train".into(),
        result: Ok(()),
    }));
    assert!(
        app.overlay.is_none(),
        "a rename that took closes the dialog"
    );
}

/// Small things a polished tool does: a tab number with no tab says so; `r` in an
/// ended VM's pane restarts it; a new grid layout is named; a zoomed tile says it is
/// zoomed; status messages go after a while.
#[test]
fn tabs_restarts_layouts_and_messages_say_what_happened() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running), vm("b", VmState::Exited(3))]);
    key(&mut app, KeyCode::Enter);
    prefix(&mut app, KeyCode::Char('5'));
    let (text, _) = app.message.clone().expect("a message");
    assert!(
        text.contains("no tab 5") && text.contains("0 to 1"),
        "{text}"
    );

    // b ended: its pane takes `r` as the restart, not as input.
    prefix(&mut app, KeyCode::Char('1'));
    assert_eq!(app.current, Some(common::row("b")));
    let effects = key(&mut app, KeyCode::Char('r'));
    assert!(
        effects.contains(&Effect::Call(Call::Restart {
            target: common::target("b"),
            running: false
        })),
        "{effects:?}"
    );
    assert!(sent_to(&effects).is_empty());

    app.message = None;
    key(&mut app, KeyCode::Char('x'));
    let (text, _) = app.message.clone().expect("a hint for the dead VM");
    assert!(text.contains("r restarts it"), "{text}");
    let expires = app.next_tick().expect("the message has an end");
    assert!(expires <= std::time::Instant::now() + std::time::Duration::from_secs(16));
}

/// A new grid layout is named in the status bar; a broadcast with the focused tile
/// left out says so instead of vanishing; tiles off screen are not typed into.
#[test]
fn layouts_are_named_and_broadcast_says_what_it_does() {
    use bioxen::ui::app::Broadcast;
    let vms: Vec<VmInfo> = (0..12)
        .map(|i| vm(&format!("v{i:02}"), VmState::Running))
        .collect();
    let (mut app, _) = dashboard(vms);
    app.on_resize(80, 24);
    key(&mut app, KeyCode::Char('*'));
    key(&mut app, KeyCode::Char('g'));
    prefix(&mut app, KeyCode::Char(' '));
    let (text, _) = app.message.clone().expect("the layout is named");
    assert!(text.starts_with("layout: "), "{text}");
    prefix(&mut app, KeyCode::Char('b'));
    match app.broadcast() {
        Some(Broadcast::To { targets, off_page }) => {
            assert_eq!(targets.len() + off_page, 12);
            assert!(off_page > 0, "at 80x24 not every tile fits: {targets:?}");
            let sent = sent_to(&key(&mut app, KeyCode::Char('x')));
            assert_eq!(sent.len(), targets.len(), "only tiles on screen: {sent:?}");
        }
        other => panic!("{other:?}"),
    }
    prefix(&mut app, KeyCode::Char('e'));
    assert_eq!(app.broadcast(), Some(Broadcast::Paused));
}

/// Tabs from 10 up are reached as in tmux: `C-b '`, the number, Enter.
#[test]
fn tabs_past_nine_are_reached_by_number() {
    let vms: Vec<VmInfo> = (0..12)
        .map(|i| vm(&format!("v{i:02}"), VmState::Running))
        .collect();
    let (mut app, _) = dashboard(vms);
    key(&mut app, KeyCode::Enter);
    prefix(&mut app, KeyCode::Char('\''));
    key(&mut app, KeyCode::Char('1'));
    key(&mut app, KeyCode::Char('x'));
    key(&mut app, KeyCode::Char('1'));
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(app.current, Some(common::row("v11")), "{effects:?}");
    assert!(app.overlay.is_none());
    assert!(effects.contains(&notify(Request::Attach {
        vm: common::vm_id("v11").into()
    })));
}

/// The install view shows all of luarocks' output with its end, though the streamed
/// lines come on another channel than the reply and may arrive after it; a line that
/// arrives late is not shown twice.
#[test]
fn an_install_ends_with_all_its_output_shown_once() {
    use bioxen::protocol::InstallOutcome;
    use bioxen::ui::app::{InstallProgress, Overlay};
    use bioxen::ui::effect::Done;
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    app.overlay = Some(Overlay::Progress(InstallProgress {
        vm: common::vm_id("a"),
        package: "inspect".into(),
        output: "Installing inspect\n".into(),
        done: None,
    }));
    let all = "Installing inspect\ninspect 3.1 is now installed\n";
    app.update(Msg::Done(Done::InstallDone(Ok(InstallOutcome {
        package: "inspect".into(),
        success: true,
        exit_code: Some(0),
        output: all.into(),
    }))));
    app.update(Msg::Server(Update::Event(Event::InstallOutput {
        vm: common::vm_id("a"),
        bytes: b"inspect 3.1 is now installed\n".to_vec(),
    })));
    match &app.overlay {
        Some(Overlay::Progress(p)) => {
            assert_eq!(p.output, all);
            assert!(p.done.as_ref().is_some_and(|(ok, _)| *ok));
        }
        other => panic!("{other:?}"),
    }
}

/// A second, smaller dashboard sized the VM: typing here takes the VM back to this
/// pane's size before the keys go in, so the other window's size does not stick once
/// it closes (tmux's `window-size latest`).
#[test]
fn a_vm_sized_by_another_dashboard_is_sized_back_by_typing_here() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Enter);
    let size = app.pane_size;
    // Our own size coming back is no reason to send it again.
    let echo = app.update(Msg::Server(Update::Event(Event::Resized {
        vm: common::vm_id("a"),
        rows: size.rows,
        cols: size.cols,
    })));
    assert_eq!(resizes(&echo), vec![]);
    assert_eq!(resizes(&type_keys(&mut app, "x")), vec![]);

    let other = app.update(Msg::Server(Update::Event(Event::Resized {
        vm: common::vm_id("a"),
        rows: 10,
        cols: 40,
    })));
    assert_eq!(
        resizes(&other),
        vec![],
        "sized back only when the user acts here"
    );
    // A list update (every stats tick) leaves the other's size alone: two dashboards
    // must not take turns resizing the VM.
    let tick = app.update(Msg::Server(Update::Event(Event::Vms(vec![vm(
        "a",
        VmState::Running,
    )]))));
    assert_eq!(resizes(&tick), vec![], "a list update is not typing");
    let typed = type_keys(&mut app, "y");
    assert_eq!(resizes(&typed), vec![("a".into(), size.rows, size.cols)]);
    assert!(
        matches!(typed.last(), Some(Effect::Notify(Request::SendInput { vm, data })) if common::vm_name(vm) == "a" && data == b"y"),
        "the size goes first, then the key: {typed:?}"
    );
    assert_eq!(resizes(&type_keys(&mut app, "z")), vec![], "once is enough");
}

/// The names the list shows, top to bottom.
fn listed(app: &App) -> Vec<String> {
    app.visible()
        .iter()
        .filter_map(|r| match r {
            bioxen::ui::app::Row::Session(info) => Some(info.name.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn sorting_by_memory_reorders_the_list_and_the_selection_stays_on_its_vm() {
    let with_mem = |name: &str, mib: u64| VmInfo {
        rss_bytes: Some(mib << 20),
        ..vm(name, VmState::Running)
    };
    let (mut app, _) = dashboard(vec![
        with_mem("small", 10),
        with_mem("big", 200),
        with_mem("mid", 50),
    ]);
    assert_eq!(listed(&app), ["small", "big", "mid"], "creation order");
    let current = app.current.clone();
    key(&mut app, KeyCode::Char('M'));
    assert_eq!(listed(&app), ["big", "mid", "small"], "largest first");
    assert_eq!(app.current, current, "the selection is a VM, not a row");
    key(&mut app, KeyCode::Char('M'));
    assert_eq!(
        listed(&app),
        ["small", "mid", "big"],
        "again: the other way"
    );
    key(&mut app, KeyCode::Char('N'));
    assert_eq!(listed(&app), ["big", "mid", "small"], "by name");
    // The tabs keep their order.
    let tabs: Vec<String> = app.rows.iter().map(|r| r.name.clone()).collect();
    assert_eq!(tabs, ["small", "big", "mid"]);
}

/// The list as text: headers in brackets, VMs by name.
fn list_rows(app: &App) -> Vec<String> {
    use bioxen::ui::app::Row;
    app.visible()
        .iter()
        .map(|r| match r {
            Row::Group(name) => format!("[{name}]"),
            Row::Session(info) => info.name.clone(),
            Row::Pool(vm) => format!("pool:{}", vm.name),
        })
        .collect()
}

/// `G` goes through the groupings: by kind, by host, by pool, none, and back to
/// experiments. The filter keeps working inside groups, and the selection stays on
/// its VM whatever the order.
#[test]
fn g_groups_the_list_by_kind_host_and_pool() {
    let mut far = vm("far", VmState::Running);
    far.kind = bioxen::VmKind::Ssh;
    far.remote = Some("me@lab1:2222".into());
    let (mut app, _) = dashboard(vec![
        vm("a", VmState::Running),
        far,
        vm("b", VmState::Running),
    ]);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.current, Some(common::row("far")));
    assert_eq!(
        list_rows(&app),
        ["a", "far", "b"],
        "no experiment, no header"
    );
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(list_rows(&app), ["[local]", "a", "b", "[ssh]", "far"]);
    assert_eq!(
        app.current,
        Some(common::row("far")),
        "the selection follows its VM"
    );
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(
        list_rows(&app),
        ["[this machine]", "a", "b", "[lab1]", "far"]
    );
    key(&mut app, KeyCode::Char('/'));
    type_keys(&mut app, "lab");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        list_rows(&app),
        ["[lab1]", "far"],
        "the filter finds a host's VMs"
    );
    key(&mut app, KeyCode::Esc);
    // The header gathers only: ending is for experiments.
    app.current = Some(bioxen::ui::app::RowId::Group("this machine".into()));
    key(&mut app, KeyCode::Char('x'));
    assert!(
        app.overlay.is_none(),
        "no kill of a host's VMs from its header"
    );
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(
        list_rows(&app),
        ["a", "far", "b"],
        "by pool: none is on a pool"
    );
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.group_by, bioxen::ui::app::GroupBy::Experiment);
}

/// The old interpreter's end, when its event comes after the restart's answer (they
/// travel apart), does not replace "restarted" in the status bar; once the new one
/// runs, its end is news again.
#[test]
fn a_late_end_of_the_old_interpreter_does_not_hide_the_restart() {
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Char('r'));
    let effects = key(&mut app, KeyCode::Char('y'));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Call(Call::Restart { running: true, .. }))),
        "{effects:?}"
    );
    let state = |app: &mut App, state| {
        app.update(Msg::Server(Update::Event(Event::State {
            vm: common::vm_id("a"),
            state,
        })))
    };
    app.update(Msg::Done(Done::Info("a restarted".into())));
    state(&mut app, VmState::Killed(15));
    assert_eq!(
        app.message.as_ref().map(|m| m.0.as_str()),
        Some("a restarted")
    );
    state(&mut app, VmState::Running);
    state(&mut app, VmState::Exited(1));
    let said = app
        .message
        .as_ref()
        .map(|m| m.0.clone())
        .unwrap_or_default();
    assert!(said.contains("exited"), "{said}");
}

/// A list longer than its pane follows the selection down, and a click on the scrolled
/// list selects the row drawn under the pointer.
#[test]
fn a_scrolled_list_shows_the_selection_and_a_click_picks_the_row_under_it() {
    let vms: Vec<VmInfo> = (0..80)
        .map(|i| vm(&format!("v{i:02}"), VmState::Running))
        .collect();
    let (mut app, _) = dashboard(vms);
    for _ in 0..60 {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(app.current, Some(common::row("v60")));
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
    let screens = std::collections::HashMap::new();
    terminal
        .draw(|f| bioxen::ui::draw::draw(f, &app, &screens))
        .unwrap();
    let lines: Vec<String> = {
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect()
            })
            .collect()
    };
    let at = |name: &str| lines.iter().position(|l| l.contains(&format!(" {name} ")));
    let selected = at("v60").expect("the selection is drawn");
    assert!(
        at("v00").is_none(),
        "the list scrolled down:\n{}",
        lines.join("\n")
    );
    let above = at("v57").expect("rows above the selection are drawn");
    assert_eq!(selected - above, 3);
    let click = crossterm::event::MouseEvent {
        kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: 5,
        row: above as u16,
        modifiers: KeyModifiers::NONE,
    };
    app.update(Msg::Terminal(TermEvent::Mouse(click)));
    assert_eq!(app.current, Some(common::row("v57")));
}

#[test]
fn the_echo_of_a_key_is_drawn_at_once_and_a_stream_of_output_a_frame_apart() {
    use bioxen::term::Screen;
    use bioxen::ui::app::FRAME;
    let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
    key(&mut app, KeyCode::Enter);
    let screen = Screen::new(app.pane_size, 1000);
    app.update(Msg::Server(Update::Event(Event::Screen {
        vm: common::vm_id("a"),
        snapshot: screen.snapshot(),
    })));
    let now = std::time::Instant::now();
    assert_eq!(
        app.frame_at(now),
        Some(now),
        "a first screen is drawn at once"
    );
    app.drawn();
    assert_eq!(app.frame_at(now), None, "nothing new, nothing drawn");
    let output = |app: &mut App, text: &str| {
        app.update(Msg::Server(Update::Output {
            vm: common::vm_id("a"),
            bytes: text.as_bytes().to_vec(),
        }))
    };
    output(&mut app, "printed\r\n");
    assert_eq!(
        app.frame_at(now),
        Some(now + FRAME),
        "output nobody typed for waits for the next frame"
    );
    app.drawn();
    assert_eq!(sent_to(&key(&mut app, KeyCode::Char('x'))), vec!["a"]);
    output(&mut app, "x");
    assert_eq!(app.frame_at(now), Some(now), "the echo does not wait");
    app.drawn();
    output(&mut app, "more\r\n");
    assert_eq!(
        app.frame_at(now),
        Some(now + FRAME),
        "after the echo, output is paced again"
    );
}

/// `c` then Enter: the create the dialog asks for, by the new VM's name.
fn create_from_the_dialog(app: &mut App) -> String {
    key(app, KeyCode::Char('c'));
    let effects = key(app, KeyCode::Enter);
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Call(Call::Create { name, .. }) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no create: {effects:?}"))
}

/// A user who goes back to the list while a VM is being made stays in the list when it
/// arrives: the keys typed next are the list's (here `c`, a new dialog), not the new
/// VM's. One who waits in the pane is taken to the new VM, as before.
#[test]
fn a_vm_that_arrives_after_the_user_went_back_to_the_list_does_not_take_the_keys() {
    use bioxen::ui::app::Focus;
    for leaves in [true, false] {
        let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
        let name = create_from_the_dialog(&mut app);
        assert_eq!(app.focus, Focus::Terminal, "the pane waits for the new VM");
        if leaves {
            prefix(&mut app, KeyCode::Char('d'));
            assert_eq!(app.focus, Focus::List);
        }
        let rows = vec![vm("a", VmState::Running), vm(&name, VmState::Running)];
        app.update(Msg::Server(Update::Event(Event::Vms(rows))));
        let made = common::vm_id(&name);
        app.update(Msg::Done(Done::Created(Ok((made, name.clone())))));
        if leaves {
            assert_eq!(app.focus, Focus::List, "still in the list");
            assert_eq!(app.current, Some(common::row("a")), "on the row it was on");
            let effects = key(&mut app, KeyCode::Char('c'));
            assert!(sent_to(&effects).is_empty(), "c went to a VM: {effects:?}");
            assert!(app.overlay.is_some(), "c opened the create dialog");
        } else {
            assert_eq!(app.focus, Focus::Terminal);
            assert_eq!(app.current, Some(common::row(&name)), "on the new VM");
        }
    }
}

/// `bioxen attach b` asks for b's screen with the list (one round trip before the
/// first frame, not two), so opening b asks for it no more; the screen that comes
/// is b's pane.
#[test]
fn attaching_by_name_at_start_does_not_ask_for_the_screen_again() {
    assert_eq!(
        bioxen::ui::watch_on_attach("b"),
        Request::Watch {
            vm: bioxen::VmRef::Name("b".into())
        }
    );
    let mut app = App::new(Keymap::default(), Rect::new(0, 0, 100, 30));
    let listed = vec![vm("a", VmState::Running), vm("b", VmState::Running)];
    assert!(app.open_on_attach("b", listed));
    let size = app.pane_size;
    let b = || common::vm_id("b").into();
    let effects = app.take_effects();
    assert!(
        !effects.iter().any(|e| matches!(
            e,
            Effect::Notify(Request::Watch { .. } | Request::Unwatch { .. })
        )),
        "neither b nor the list's first VM is watched now: {effects:?}"
    );
    assert!(effects.contains(&notify(Request::Attach { vm: b() })));
    assert!(effects.contains(&notify(Request::Resize {
        vm: b(),
        rows: size.rows,
        cols: size.cols
    })));
    assert_eq!(app.focus, Focus::Terminal);
    let mut theirs = bioxen::term::Screen::new(size, 1000);
    theirs.feed(b"> print('b here')\r\nb here\r\n> ");
    app.update(Msg::Server(Update::Event(Event::Screen {
        vm: common::vm_id("b"),
        snapshot: theirs.snapshot(),
    })));
    assert!(app.mirrors[&common::vm_id("b")].text().contains("b here"));
}

/// The server may answer a create before its list shows the new VM. Either way, the
/// dashboard that waits in the new VM's pane tells the server it is attached, so the
/// server reads the VM as one someone types into (read ahead, never paced).
#[test]
fn a_created_vm_is_attached_whether_its_answer_or_its_row_comes_first() {
    for answer_first in [true, false] {
        let (mut app, _) = dashboard(vec![vm("a", VmState::Running)]);
        let name = create_from_the_dialog(&mut app);
        let made = common::vm_id(&name);
        let rows = vec![vm("a", VmState::Running), vm(&name, VmState::Running)];
        let answer = Msg::Done(Done::Created(Ok((made, name.clone()))));
        let listed = Msg::Server(Update::Event(Event::Vms(rows)));
        let mut effects = Vec::new();
        for msg in match answer_first {
            true => [answer, listed],
            false => [listed, answer],
        } {
            effects.extend(app.update(msg));
        }
        let attach = notify(Request::Attach { vm: made.into() });
        assert!(
            effects.contains(&attach),
            "answer first: {answer_first}; {effects:?}"
        );
        assert_eq!(app.current, Some(common::row(&name)));
    }
}
