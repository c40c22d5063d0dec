//! Experiments in the dashboard's list: each experiment under a header that folds,
//! keys on the header that act on the whole experiment, and `u` starting one from its
//! file. The app is driven without a server; `experiment.rs` runs the server side.

use crate::common;

use std::path::PathBuf;

use bioxen::client::Update;
use bioxen::keymap::Keymap;
use bioxen::protocol::{Busy, Event, Experiment, Membership, PlannedVm, UpReport};
use bioxen::ui::app::{App, Confirm, Msg, Overlay, Row, RowId};
use bioxen::ui::draw::draw;
use bioxen::ui::effect::{Call, Done, Effect};
use bioxen::{VmInfo, VmKind, VmState};
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

fn spec(name: &str, env: &[(&str, &str)]) -> PlannedVm {
    PlannedVm {
        name: name.into(),
        kind: VmKind::Local,
        host: None,
        script: Some("/exp/train.lua".into()),
        args: vec!["data.csv".into()],
        cwd: None,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        depends_on: Vec::new(),
        restart: Default::default(),
        max_restarts: 0,
        backoff_secs: 0.0,
        restore: None,
    }
}

/// A VM `name` of experiment `experiment`.
fn member(experiment: &str, name: &str, state: VmState, restarts: u32) -> VmInfo {
    VmInfo {
        experiment: Some(Membership {
            name: experiment.into(),
            spec: spec(name, &[("SEED", name)]),
            restarts,
        }),
        ..common::vm_info(name, state, Some(100))
    }
}

fn dashboard(vms: Vec<VmInfo>) -> App {
    let mut app = App::new(Keymap::default(), Rect::new(0, 0, 120, 30));
    app.update(Msg::Server(Update::Event(Event::Vms(vms))));
    app
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(Msg::Terminal(TermEvent::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))))
}

/// The list's rows as names, headers as `[name]`.
fn rows(app: &App) -> Vec<String> {
    app.visible()
        .iter()
        .map(|r| match r {
            Row::Group(name) => format!("[{name}]"),
            other => other.name().to_string(),
        })
        .collect()
}

fn calls(effects: Vec<Effect>) -> Vec<Call> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Call(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn drawn(app: &App) -> Vec<String> {
    let (cols, rows) = (120, 30);
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    let screens = std::collections::HashMap::new();
    terminal.draw(|f| draw(f, app, &screens)).unwrap();
    let buf = terminal.backend().buffer();
    (0..rows)
        .map(|y| (0..cols).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

fn sweep() -> Vec<VmInfo> {
    vec![
        common::vm_info("scratch", VmState::Running, Some(100)),
        member("sweep", "sw-loader", VmState::Running, 0),
        common::vm_info("notes", VmState::Running, Some(100)),
        member("sweep", "sw-train-1", VmState::Exited(1), 2),
        member(
            "sweep",
            "sw-train-2",
            VmState::Waiting("sw-loader: idle".into()),
            0,
        ),
    ]
}

#[test]
fn an_experiment_s_vms_sit_under_its_header_which_folds_and_unfolds() {
    let mut app = dashboard(sweep());
    assert_eq!(
        rows(&app),
        [
            "scratch",
            "[sweep]",
            "sw-loader",
            "sw-train-1",
            "sw-train-2",
            "notes"
        ],
        "the group takes the place of its first VM; the others keep theirs"
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(app.current, Some(RowId::Group("sweep".into())));
    key(&mut app, KeyCode::Enter);
    assert_eq!(rows(&app), ["scratch", "[sweep]", "notes"], "Enter folds");
    key(&mut app, KeyCode::Down);
    assert_eq!(app.current_info().map(|i| i.name.as_str()), Some("notes"));
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Right);
    assert_eq!(rows(&app).len(), 6, "Right unfolds");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(
        app.current_info().map(|i| i.name.as_str()),
        Some("sw-train-1")
    );
    key(&mut app, KeyCode::Left);
    assert_eq!(
        app.current,
        Some(RowId::Group("sweep".into())),
        "folding from a VM selects its header, never a hidden row"
    );
    assert_eq!(rows(&app), ["scratch", "[sweep]", "notes"]);
    // A filter finds VMs inside a folded group.
    key(&mut app, KeyCode::Char('/'));
    for c in "train-2".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    assert_eq!(rows(&app), ["[sweep]", "sw-train-2"]);
    // Its header says how many of its VMs the filter lets through.
    let header = drawn(&app)
        .into_iter()
        .find(|l| l.contains("▸ sweep") || l.contains("▾ sweep"))
        .unwrap();
    assert!(header.contains("sweep (1 of 3)"), "{header}");
}

#[test]
fn a_large_experiment_starts_folded_and_a_small_one_open() {
    let mut vms: Vec<VmInfo> = (0..21)
        .map(|i| member("big", &format!("big-{i:02}"), VmState::Running, 0))
        .collect();
    vms.push(member("small", "small-a", VmState::Running, 0));
    let app = dashboard(vms);
    assert_eq!(rows(&app), ["[big]", "[small]", "small-a"]);
}

/// `bioxen attach NAME` of a VM inside a folded experiment opens that VM, as it
/// does any other: the group unfolds, and the keys go to the VM, not to the list.
#[test]
fn attaching_by_name_opens_a_vm_inside_a_folded_experiment() {
    let vms: Vec<VmInfo> = (0..21)
        .map(|i| member("big", &format!("big-{i:02}"), VmState::Running, 0))
        .collect();
    let mut app = dashboard(vms);
    assert_eq!(rows(&app), ["[big]"], "the experiment starts folded");
    assert!(app.open_named("big-07"), "big-07 is listed, folded or not");
    assert_eq!(app.current_vm(), Some(common::vm_id("big-07")));
    assert_eq!(app.focus, bioxen::ui::app::Focus::Terminal);
    assert!(
        rows(&app).contains(&"big-07".to_string()),
        "its group unfolds"
    );
    assert!(!app.open_named("big-99"), "a name nobody has opens nothing");
}

#[test]
fn the_header_counts_its_vms_states_restarts_and_progress() {
    let mut vms = sweep();
    vms[1].busy = Some(Busy::Idle);
    let mut app = dashboard(vms);
    key(&mut app, KeyCode::Down);
    let summary = app.group_summary("sweep");
    assert_eq!(
        (summary.vms, summary.idle, summary.waiting, summary.failed),
        (3, 1, 1, 1)
    );
    assert_eq!(summary.restarts, 2);
    let text = drawn(&app).join("\n");
    assert!(text.contains("▾ sweep (3)"), "header: {text}");
    assert!(text.contains("1◦ 1… 1✖"), "counts: {text}");
    assert!(text.contains("sw-train-1 ↻2"), "restart counter: {text}");
    // The pane shows what each VM runs: the record of the experiment.
    assert!(text.contains("experiment sweep"), "pane title: {text}");
    assert!(
        text.contains("waiting(sw-loader: idle)") && text.contains("train.lua data.csv  SEED="),
        "spec: {text}"
    );
}

#[test]
fn keys_on_the_header_end_rerun_and_grid_the_whole_experiment() {
    let mut app = dashboard(sweep());
    key(&mut app, KeyCode::Down);
    assert!(
        calls(key(&mut app, KeyCode::Char('x'))).is_empty(),
        "x asks first"
    );
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::EndExperiment {
            vms: 3,
            running: 1,
            ..
        }))
    ));
    assert_eq!(
        calls(key(&mut app, KeyCode::Char('y'))),
        [Call::Down("sweep".into())]
    );

    key(&mut app, KeyCode::Char('r'));
    let again = calls(key(&mut app, KeyCode::Char('y')));
    let Some(Call::Rerun(Experiment { name, vms })) = again.first() else {
        panic!("r then y runs the experiment again: {again:?}");
    };
    assert_eq!(name, "sweep");
    let names: Vec<&str> = vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["sw-loader", "sw-train-1", "sw-train-2"]);
    assert_eq!(vms[1].env, [("SEED".to_string(), "sw-train-1".to_string())]);

    key(&mut app, KeyCode::Char('g'));
    let grid = app.shown_grid().expect("g on a header opens a grid");
    let ids: Vec<_> = ["sw-loader", "sw-train-1", "sw-train-2"]
        .iter()
        .map(|n| common::vm_id(n))
        .collect();
    assert_eq!(
        grid.vms, ids,
        "the grid holds the experiment's VMs, ended ones too"
    );
}

#[test]
fn u_starts_an_experiment_file_and_asks_before_restarting_changed_vms() {
    let mut app = dashboard(sweep());
    key(&mut app, KeyCode::Char('u'));
    for c in "sweep.toml".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    assert_eq!(
        calls(key(&mut app, KeyCode::Enter)),
        [Call::Up {
            path: PathBuf::from("sweep.toml"),
            force: false
        }]
    );
    // A refused file keeps the prompt open with the reason.
    let why = "sweep.toml:4:9: vm.depends_on: no VM named 'lodaer'".to_string();
    app.update(Msg::Done(Done::Up {
        path: "sweep.toml".into(),
        forced: false,
        result: Err(why.clone()),
    }));
    match &app.overlay {
        Some(Overlay::Load(form)) => assert_eq!(form.error.as_ref(), Some(&why)),
        other => panic!("the prompt stays with the error: {other:?}"),
    }
    key(&mut app, KeyCode::Enter);
    let report = UpReport {
        started: vec![],
        unchanged: vec!["sw-loader".into()],
        changed: vec!["sw-train-1".into()],
    };
    app.update(Msg::Done(Done::Up {
        path: "sweep.toml".into(),
        forced: false,
        result: Ok(("sweep".into(), report)),
    }));
    assert!(
        matches!(&app.overlay, Some(Overlay::Confirm(Confirm::UpChanged { changed, .. })) if changed == &["sw-train-1"]),
        "a changed spec is restarted only after asking: {:?}",
        app.overlay
    );
    assert_eq!(
        calls(key(&mut app, KeyCode::Char('y'))),
        [Call::Up {
            path: PathBuf::from("sweep.toml"),
            force: true
        }]
    );
    key(&mut app, KeyCode::Char('u'));
    assert!(
        matches!(&app.overlay, Some(Overlay::Load(form)) if form.path == "sweep.toml"),
        "u offers the file it last started"
    );
}

#[test]
fn tab_in_the_u_prompt_completes_from_what_the_runner_found() {
    let mut app = dashboard(vec![]);
    key(&mut app, KeyCode::Char('u'));
    for c in "exp/sw".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    assert_eq!(
        calls(key(&mut app, KeyCode::Tab)),
        [Call::Complete("exp/sw".into())]
    );
    app.update(Msg::Done(Done::Completed {
        typed: "exp/sw".into(),
        found: vec!["exp/sweep-a.toml".into(), "exp/sweep-b.toml".into()],
    }));
    let Some(Overlay::Load(form)) = &app.overlay else {
        panic!("the prompt stays open");
    };
    assert_eq!(form.path, "exp/sweep-", "what both share is filled in");
    assert_eq!(form.choices.len(), 2, "and both are listed");
    let text = drawn(&app).join("\n");
    assert!(text.contains("sweep-a.toml") && text.contains("sweep-b.toml"));
}
