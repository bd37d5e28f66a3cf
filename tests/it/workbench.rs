//! The real workbench driven headlessly with egui_kittest: open the bundled
//! sample, triage from the keyboard and with buttons, undo/redo, batch-exclude.
#![cfg(feature = "gui")]

use std::path::PathBuf;

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use poisonlens::review::Decision;
use poisonlens::ui::{Action, ColorBy, ScanState, Settings, Workbench};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_data")
}

/// Settings with a review store of the test's own (tests run in parallel on
/// the one bundled sample), under Cargo's per-target temporary folder.
fn settings() -> Settings {
    Settings {
        state_dir: Some(
            tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap()
                .keep(),
        ),
        reviewer: "tester".into(),
        fdr: poisonlens::detect::DEFAULT_FDR,
        signing_key: None,
        views: Default::default(),
        model: None,
    }
}

fn harness() -> Harness<'static, Workbench> {
    harness_with(settings())
}

fn harness_with(settings: Settings) -> Harness<'static, Workbench> {
    harness_sized(settings, [1400.0, 860.0])
}

fn harness_sized(settings: Settings, size: [f32; 2]) -> Harness<'static, Workbench> {
    let mut w = Workbench::new(sample(), vec![], settings);
    w.wait_for_job();
    assert!(w.loaded.is_some(), "{:?}", w.error);
    let mut h = Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, w: &mut Workbench| w.show(ui), w);
    h.step();
    h
}

/// Opens the cluster map and clicks the row of the class whose split was
/// judged real (the sample's backdoor-like group).
fn click_split_cluster_row(h: &mut Harness<'_, Workbench>) {
    h.get_by_label("Cluster map").click();
    h.step();
    h.step();
    h.get_by_label_contains("· split").click();
    h.step();
    h.step();
}

/// Sample `i`'s decision once every decision asked for is on disk.
fn decision(h: &mut Harness<'_, Workbench>, i: usize) -> Option<Decision> {
    h.state_mut().wait_for_saves();
    h.state()
        .loaded
        .as_ref()
        .unwrap()
        .review()
        .decision(i)
        .map(|e| e.decision)
}

#[test]
fn opens_the_sample_with_a_queue_most_suspicious_first() {
    let h = harness();
    let w = h.state();
    let l = w.loaded.as_ref().unwrap();
    assert_eq!(w.queue.len(), l.report.flagged_count());
    assert!(
        w.queue
            .windows(2)
            .all(|p| l.report.score[p[0]] >= l.report.score[p[1]])
    );
    assert_eq!(w.cursor, 0, "the most suspicious sample is shown first");
    h.get_by_label("Triage queue");
    h.get_by_label("Nearest neighbours");
}

#[test]
fn u_queues_a_class_whole_flagged_first_then_the_rest_most_suspicious_first() {
    let mut h = harness();
    let (class, flagged_in_class, members) = {
        let r = &h.state().loaded.as_ref().unwrap().report;
        let class = r.labels[h.state().queue[0]];
        let flagged = (0..r.ids.len())
            .filter(|&i| r.labels[i] == class && r.flagged[i])
            .count();
        let members = r.labels.iter().filter(|&&c| c == class).count();
        (class, flagged, members)
    };
    assert!(flagged_in_class > 0 && flagged_in_class < members);
    h.state_mut().apply(Action::FilterClass(Some(class)));
    h.step();
    assert_eq!(h.state().queue.len(), flagged_in_class);
    h.key_press(Key::U);
    h.step();
    {
        let w = h.state();
        let r = &w.loaded.as_ref().unwrap().report;
        assert!(w.filter.unflagged);
        assert_eq!(w.queue.len(), members, "every sample of the class");
        assert!(w.queue.iter().all(|&i| r.labels[i] == class));
        let (flagged, rest) = w.queue.split_at(flagged_in_class);
        assert!(flagged.iter().all(|&i| r.flagged[i]), "flagged first");
        assert!(rest.iter().all(|&i| !r.flagged[i]));
        assert!(
            rest.windows(2).all(|p| r.score[p[0]] >= r.score[p[1]]),
            "then the unflagged, most suspicious first"
        );
    }
    h.step();
    h.get_by_label_contains(&format!(
        "{members} in queue ({flagged_in_class} flagged; dim rows: not flagged)"
    ));
    // The same key (or the Show drop-down) goes back to the flagged ones.
    h.key_press(Key::U);
    h.step();
    assert!(!h.state().filter.unflagged);
    assert_eq!(h.state().queue.len(), flagged_in_class);
}

#[test]
fn an_empty_queue_offers_the_unflagged_samples_ranked_by_the_chosen_detector() {
    let mut h = harness();
    // A detector and a class it flags nothing in, though its scores there
    // differ from sample to sample (so the ranking is seen).
    let (quiet, class) = {
        let r = &h.state().loaded.as_ref().unwrap().report;
        let classes = 0..r.labels.iter().max().map_or(0, |&c| c + 1);
        poisonlens::detect::detector_infos()
            .filter_map(|d| r.detector(d.name).map(|s| (d.name, s)))
            .flat_map(|(d, s)| classes.clone().map(move |c| (d, s, c)))
            .find(|&(_, s, c)| {
                let of_c: Vec<usize> = (0..r.ids.len()).filter(|&i| r.labels[i] == c).collect();
                let lo = of_c
                    .iter()
                    .map(|&i| s.score[i])
                    .fold(f32::INFINITY, f32::min);
                let hi = of_c.iter().map(|&i| s.score[i]).fold(0.0, f32::max);
                of_c.iter().all(|&i| !s.flagged[i]) && hi > lo
            })
            .map(|(d, _, c)| (d, c))
            .expect("a detector that flags nothing in some class")
    };
    h.state_mut().apply(Action::FilterDetector(Some(quiet)));
    h.state_mut().apply(Action::FilterClass(Some(class)));
    h.step();
    h.step();
    assert!(h.state().queue.is_empty());
    h.get_by_label("The queue is empty: nothing flagged matches the filter.");
    h.get_by_label_contains("Show unflagged samples too")
        .click();
    h.step();
    let w = h.state();
    let r = &w.loaded.as_ref().unwrap().report;
    let d = r.detector(quiet).unwrap();
    let members = r.labels.iter().filter(|&&c| c == class).count();
    assert_eq!(w.queue.len(), members);
    assert!(
        w.queue.windows(2).all(|p| d.score[p[0]] >= d.score[p[1]]),
        "ranked by {quiet}'s own score"
    );
    assert!(
        w.queue.windows(2).any(|p| d.score[p[0]] > d.score[p[1]]),
        "a ranking, not a tie"
    );
    // Flagged, in the count and the dim rows, means flagged by the detector.
    h.step();
    h.get_by_label_contains(&format!(
        "{members} in queue (0 flagged; dim rows: not flagged)"
    ));
}

#[test]
fn the_queue_keeps_the_current_row_in_view_however_far_it_moves() {
    // Sixty presses in one frame (a held key, a fast hand) move the cursor
    // past every row laid out; the list still scrolls to it.
    let mut h = harness();
    for _ in 0..60 {
        h.key_press(Key::J);
    }
    for _ in 0..4 {
        h.step();
    }
    let w = h.state();
    assert_eq!(w.cursor, 60);
    let l = w.loaded.as_ref().unwrap();
    let id = l.report.ids[w.current().unwrap()].clone();
    let row = h.get_by_label_contains(&format!("{id:<10} ")).rect();
    let list = h.get_by_label_contains(" in queue · 61 of ").rect();
    assert!(
        row.top() > list.bottom() && row.bottom() <= 860.0,
        "row {row:?} below the queue's header {list:?} and in the window"
    );
    // And back up by as much.
    for _ in 0..60 {
        h.key_press(Key::K);
    }
    for _ in 0..4 {
        h.step();
    }
    let first = h.state().loaded.as_ref().unwrap().report.ids[h.state().current().unwrap()].clone();
    let row = h.get_by_label_contains(&format!("{first:<10} ")).rect();
    assert!(row.top() > list.bottom(), "{row:?}");
}

#[test]
fn keyboard_triage_with_undo_and_redo() {
    let mut h = harness();
    let first = h.state().current().unwrap();
    h.key_press(Key::X);
    h.step();
    assert_eq!(decision(&mut h, first), Some(Decision::Exclude));
    let second = h.state().current().unwrap();
    assert_ne!(first, second, "a decision moves on to the next sample");

    h.key_press(Key::Num3);
    h.step();
    assert_eq!(decision(&mut h, second), Some(Decision::Relabel(2)));
    // The queue row reads the new label.
    h.step();
    let class = h.state().loaded.as_ref().unwrap().dataset.classes[2].clone();
    let id = h.state().loaded.as_ref().unwrap().report.ids[second].clone();
    h.get_by_label_contains(&format!("R  {id:<10} →{class}"));

    // j/k move without deciding.
    let third = h.state().current().unwrap();
    h.key_press(Key::J);
    h.step();
    h.key_press(Key::K);
    h.step();
    assert_eq!(h.state().current(), Some(third));
    assert_eq!(decision(&mut h, third), None);

    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(decision(&mut h, second), None, "undo reverts the relabel");
    assert_eq!(
        h.state().current(),
        Some(second),
        "undo shows the sample it changed"
    );
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.step();
    assert_eq!(
        decision(&mut h, second),
        Some(Decision::Relabel(2)),
        "redo re-applies it"
    );
}

/// A digit relabels only on its own: with Shift (typing "!" or ")"), Ctrl or
/// Alt it decides nothing, and typed into the Reason field it is text.
#[test]
fn digit_keys_relabel_only_without_modifiers_and_outside_text_fields() {
    let mut h = harness();
    let first = h.state().current().unwrap();
    for m in [Modifiers::SHIFT, Modifiers::CTRL, Modifiers::ALT] {
        for key in [Key::Num1, Key::Num0] {
            h.key_press_modifiers(m, key);
            h.step();
        }
    }
    assert_eq!(decision(&mut h, first), None, "no modified digit decides");
    assert_eq!(h.state().current(), Some(first));

    h.get_by_label("Reason").click();
    h.run_ok();
    h.get_by_label("Reason").type_text("(backdoor) 1");
    h.key_press(Key::Num1);
    h.step();
    assert_eq!(decision(&mut h, first), None, "typing is not a decision");
    assert!(
        h.state().panels.reason.contains("(backdoor) 1"),
        "{}",
        h.state().panels.reason
    );

    // Out of the field, the plain digit relabels.
    h.key_press(Key::Escape);
    h.step();
    h.key_press(Key::Num1);
    h.step();
    assert_eq!(decision(&mut h, first), Some(Decision::Relabel(0)));
    // The reason sticks to the next decisions, and the panel says so until
    // it is cleared.
    h.step();
    h.get_by_label("This reason is recorded with every decision until cleared.");
    h.get_by_label("Clear reason").click();
    h.step();
    h.step();
    assert!(h.state().panels.reason.is_empty());
    assert!(
        h.query_by_label("Clear reason").is_none(),
        "gone with the reason"
    );
}

/// `a` on a sample with no suggestion says so in the status line — not as
/// an error banner that outlives it — until the next key.
#[test]
fn a_key_that_cannot_act_says_so_until_the_next_key() {
    let mut h = harness();
    let r = &h.state().loaded.as_ref().unwrap().report;
    let plain = (0..r.ids.len())
        .find(|&i| r.suggested_label[i].is_none())
        .unwrap();
    h.state_mut().apply(Action::Select(plain));
    h.step();
    h.key_press(Key::A);
    h.step();
    let hint = h.state().key_hint.clone().unwrap_or_default();
    assert!(hint.contains("no suggested label"), "{hint}");
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert_eq!(decision(&mut h, plain), None);
    h.get_by_label_contains("no suggested label");
    h.key_press(Key::J);
    h.step();
    assert!(h.state().key_hint.is_none(), "gone with the next key");
}

#[test]
fn accept_suggestion_and_buttons() {
    let mut h = harness();
    h.state_mut()
        .apply(Action::FilterDetector(Some("label_flip")));
    h.step();
    let i = h.state().current().unwrap();
    let suggested = h.state().loaded.as_ref().unwrap().report.suggested_label[i]
        .expect("label flips carry a suggestion");
    h.key_press(Key::A);
    h.step();
    assert_eq!(decision(&mut h, i), Some(Decision::Relabel(suggested)));

    let j = h.state().current().unwrap();
    h.get_by_label("Keep").click();
    h.step();
    h.step();
    assert_eq!(decision(&mut h, j), Some(Decision::Keep));
}

#[test]
fn batch_exclude_is_one_undo_step() {
    let mut h = harness();
    // A box of samples the queue does not hold (unflagged).
    let flagged = h.state().loaded.as_ref().unwrap().report.flagged.clone();
    let picked: Vec<usize> = (0..flagged.len())
        .filter(|&i| !flagged[i])
        .take(40)
        .collect();
    h.state_mut().apply(Action::SelectMany(picked.clone()));
    h.step();
    h.step(); // the selection box settles its layout
    h.get_by_label("Exclude selection").click();
    h.step();
    h.step();
    assert_eq!(h.state().batch, Some(Decision::Exclude));
    h.get_by_label("Apply to 40 samples").click();
    h.step();
    h.step();
    assert!(
        picked
            .iter()
            .all(|&i| decision(&mut h, i) == Some(Decision::Exclude))
    );
    let queue = h.state().queue.clone();
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert!(picked.iter().all(|&i| decision(&mut h, i).is_none()));
    assert_eq!(
        h.state().queue,
        queue,
        "undoing a batch leaves the queue as it was"
    );
}

/// Every drop-down reads label first ("Projection [PCA ▾]"), and its label
/// names it.
#[test]
fn drop_downs_have_their_labels_before_them() {
    use egui::accesskit::Role;
    use egui_kittest::kittest::By;
    let h = harness();
    for name in [
        "Detector",
        "Class",
        "Decision",
        "False-flag budget",
        "Projection",
        "Colour by",
        "Relabel to",
    ] {
        let combo = h.get_by_label(name).rect();
        let label = h
            .get(By::new().label(name).role(Role::Label).include_labels())
            .rect();
        assert!(
            label.max.x <= combo.min.x && (label.center().y - combo.center().y).abs() < 8.0,
            "{name}: label {label:?}, drop-down {combo:?}"
        );
    }
    // The queue's filters line up in one column.
    let lefts: Vec<f32> = ["Detector", "Class", "Decision", "False-flag budget"]
        .iter()
        .map(|name| h.get_by_label(name).rect().min.x)
        .collect();
    assert!(
        lefts.iter().all(|x| (x - lefts[0]).abs() < 1.0),
        "the queue's drop-downs start at {lefts:?}"
    );
}

#[test]
fn help_lists_the_keys() {
    // "?" with or without the Shift most layouts need to type it.
    for m in [Modifiers::NONE, Modifiers::SHIFT] {
        let mut h = harness();
        h.key_press_modifiers(m, Key::Questionmark);
        h.step();
        h.step();
        h.get_by_label("Accept the suggested label");
        h.get_by_label("Exclude from the cleaned dataset");
        // Which digit is which class: the 10th (Trouser in the sample) is 0.
        h.get_by_label("Relabel keys for this dataset:");
        h.get_by_label("0  Trouser");
    }
}

#[test]
fn a_dataset_that_fails_to_load_keeps_the_previous_one_open() {
    let mut h = harness();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.csv"), "id,label\na,x\na,y\n").unwrap();
    h.state_mut().open(dir.path().to_path_buf());
    h.state_mut().wait_for_job();
    h.step();
    let w = h.state();
    let e = w.error.as_deref().unwrap();
    assert!(
        e.contains("duplicate id 'a'") && e.contains("stays open"),
        "{e}"
    );
    assert_eq!(w.loaded.as_ref().unwrap().path, sample());
}

#[test]
fn cluster_map_row_filters_queue_and_plot() {
    let mut h = harness();
    click_split_cluster_row(&mut h);
    let w = h.state();
    let row = w.filter.cluster.expect("a row click filters to its group");
    let r = &w.loaded.as_ref().unwrap().report;
    assert!(
        w.queue
            .iter()
            .all(|&i| poisonlens::detect::cluster_map::in_row(r, i, row))
    );
    assert_eq!(
        w.view,
        poisonlens::ui::CentralView::Embedding,
        "the click shows the group in the plot"
    );
}

#[test]
fn tsne_view_is_computed_in_the_background_and_shown() {
    let mut h = harness();
    h.state_mut().apply(Action::UseTsne);
    assert!(h.state().is_busy(), "t-SNE runs as a job");
    for _ in 0..600 {
        h.step();
        if !h.state().is_busy() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let l = h.state().loaded.as_ref().unwrap();
    assert_eq!(l.projection.method, "t-SNE");
    assert_eq!(l.projection.points.len(), l.dataset.len());
    h.state_mut().apply(Action::UsePca);
    assert_eq!(h.state().loaded.as_ref().unwrap().projection.method, "PCA");
}

#[test]
fn type_ahead_picker_relabels_with_enter() {
    let mut h = harness();
    let i = h.state().current().unwrap();
    h.key_press(Key::R);
    h.step();
    h.step();
    assert!(h.state().panels.picker.is_some());
    h.event(egui::Event::Text("sneak".into()));
    h.step();
    h.key_press(Key::Enter);
    h.step();
    h.step();
    let classes = &h.state().loaded.as_ref().unwrap().dataset.classes;
    let sneaker = classes.iter().position(|c| c == "Sneaker").unwrap() as u32;
    assert_eq!(decision(&mut h, i), Some(Decision::Relabel(sneaker)));
    assert!(
        h.state().panels.picker.is_none(),
        "the picker closes after choosing"
    );
}

/// The sample's backdoor carriers, found by the trigger search, stand out
/// in the cluster map as a suspect row of their own, and a click filters
/// the queue to exactly them.
#[test]
fn the_cluster_map_shows_the_trigger_carriers_as_a_suspect_row() {
    let mut h = harness();
    h.get_by_label("Cluster map").click();
    h.step();
    h.step();
    let carriers = trigger_carriers(&h);
    let bag = h.state().loaded.as_ref().unwrap().dataset.classes[1].clone();
    let in_bag = carriers
        .iter()
        .filter(|&&i| h.state().loaded.as_ref().unwrap().report.labels[i] == 1)
        .count();
    let suspect_rows = h
        .state()
        .loaded
        .as_ref()
        .unwrap()
        .cluster_rows
        .iter()
        .filter(|r| r.suspect)
        .count();
    assert_eq!(
        h.query_all_by_label_contains("· suspect").count(),
        suspect_rows
    );
    h.get_by_label_contains(&format!(
        "{bag} trigger: {in_bag}/{in_bag} flagged · suspect"
    ))
    .click();
    h.step();
    h.step();
    let mut queue = h.state().queue.clone();
    queue.sort_unstable();
    let labels = h.state().loaded.as_ref().unwrap().report.labels.clone();
    let want: Vec<usize> = carriers.into_iter().filter(|&i| labels[i] == 1).collect();
    assert_eq!(queue, want);
    // Only rows most of whose members are flagged read "suspect": no main
    // group of the sample's classes does.
    let rows = &h.state().loaded.as_ref().unwrap().cluster_rows;
    assert!(
        rows.iter()
            .all(|r| r.suspect == (2 * r.flagged > r.members.len()))
    );
    assert!(rows.iter().filter(|r| r.cluster == 0).all(|r| !r.suspect));
}

/// At 1280×800, with a selection taking room in it, the sample panel
/// scrolls: its detector scores, metadata and nearest neighbours can all
/// be brought on screen.
#[test]
fn the_sample_panel_scrolls_to_every_part_at_1280x800() {
    let mut h = harness_sized(settings(), [1280.0, 800.0]);
    h.state_mut().apply(Action::SelectMany((0..40).collect()));
    for _ in 0..4 {
        h.step();
    }
    h.get_by_label("Exclude selection");
    let bottom_of = |h: &Harness<'_, Workbench>, label: &str| h.get_by_label(label).rect().bottom();
    assert!(
        bottom_of(&h, "Nearest neighbours") > 800.0,
        "the neighbours start below the screen with a selection shown"
    );
    for label in ["Detector scores", "Metadata", "Nearest neighbours"] {
        h.get_by_label(label).scroll_to_me();
        for _ in 0..3 {
            h.step();
        }
        let b = bottom_of(&h, label);
        assert!(
            (0.0..=800.0).contains(&b),
            "{label} not reachable: bottom at {b}"
        );
    }
}

#[test]
fn cluster_row_selects_the_group_for_a_batch_decision() {
    let mut h = harness();
    click_split_cluster_row(&mut h);
    let sel = h.state().selection.clone();
    assert!(!sel.is_empty());
    h.step(); // the selection box settles its layout
    h.get_by_label("Exclude selection").click();
    h.step();
    h.step();
    h.get_by_label(&format!("Apply to {} samples", sel.len()))
        .click();
    h.step();
    h.step();
    assert!(
        sel.iter()
            .all(|&i| decision(&mut h, i) == Some(Decision::Exclude))
    );
}

#[test]
fn polygon_test_for_the_lasso() {
    use poisonlens::ui::scatter_view::inside;
    let square = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
    assert!(inside(&square, [1.0, 1.0]));
    assert!(!inside(&square, [3.0, 1.0]));
    let l_shape = [
        [0.0, 0.0],
        [2.0, 0.0],
        [2.0, 1.0],
        [1.0, 1.0],
        [1.0, 2.0],
        [0.0, 2.0],
    ];
    assert!(inside(&l_shape, [0.5, 1.5]));
    assert!(!inside(&l_shape, [1.5, 1.5]));
}

/// What the scatter view draws: points in groups, nothing highlighted.
fn plain_input<'a>(
    points: &'a [[f32; 2]],
    group: &'a [u16],
    names: &'a [String],
    colors: &'a [egui::Color32],
    generation: u64,
) -> poisonlens::ui::scatter_view::ScatterInput<'a> {
    poisonlens::ui::scatter_view::ScatterInput {
        points,
        group,
        names,
        colors,
        highlight: None,
        selection: &[],
        generation,
    }
}

#[test]
fn ctrl_drag_lasso_selects_the_points_inside() {
    use egui::{Event, PointerButton, Pos2};
    use poisonlens::ui::scatter_view;
    let points: Vec<[f32; 2]> = (0..400)
        .map(|i| [(i % 20) as f32, (i / 20) as f32])
        .collect();
    let group = vec![0u16; points.len()];
    let names = vec!["all".to_string()];
    let colors = vec![egui::Color32::WHITE];
    let selected = std::cell::RefCell::new(None);
    let mut h = Harness::builder().with_size([600.0, 600.0]).build_ui(|ui| {
        let input = plain_input(&points, &group, &names, &colors, 0);
        if let Some(s) = scatter_view::show(ui, "lasso", &input, |_, _| {}).box_selected {
            *selected.borrow_mut() = Some(s);
        }
    });
    h.step();
    h.step();
    let ctrl = Modifiers::COMMAND;
    let path = [
        Pos2::new(200.0, 200.0),
        Pos2::new(400.0, 200.0),
        Pos2::new(400.0, 400.0),
        Pos2::new(200.0, 400.0),
        Pos2::new(200.0, 210.0),
    ];
    h.event_modifiers(Event::PointerMoved(path[0]), ctrl);
    h.event_modifiers(
        Event::PointerButton {
            pos: path[0],
            button: PointerButton::Primary,
            pressed: true,
            modifiers: ctrl,
        },
        ctrl,
    );
    h.step();
    for p in path.iter().skip(1) {
        h.event_modifiers(Event::PointerMoved(*p), ctrl);
        h.step();
    }
    h.event_modifiers(
        Event::PointerButton {
            pos: path[4],
            button: PointerButton::Primary,
            pressed: false,
            modifiers: ctrl,
        },
        ctrl,
    );
    h.step();
    drop(h);
    let s = selected.into_inner().expect("the lasso selected something");
    assert!(
        !s.is_empty() && s.len() < points.len(),
        "{} selected",
        s.len()
    );
}

#[test]
fn queue_filters_by_decision() {
    use poisonlens::ui::DecisionFilter;
    let mut h = harness();
    let first = h.state().current().unwrap();
    h.key_press(Key::X);
    h.step();
    // Filters read decisions as stored: once this one is on disk.
    h.state_mut().wait_for_saves();
    h.state_mut()
        .apply(Action::FilterDecision(DecisionFilter::Excluded));
    h.step();
    assert!(h.state().queue.contains(&first));
    let l = h.state().loaded.as_ref().unwrap();
    // Only excluded samples, plus the one on screen (it stays until you move on).
    let shown = h.state().current().unwrap();
    assert!(
        h.state().queue.iter().all(|&i| i == shown
            || l.review().decision(i).map(|e| e.decision) == Some(Decision::Exclude))
    );
    assert_eq!(h.state().queue.len(), 1 + usize::from(shown != first));
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn dropping_a_dataset_onto_the_window_opens_it() {
    let mut h = harness();
    let d = tiny_dataset();
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(d.path().to_path_buf())));
    h.step();
    assert!(h.state().is_busy(), "the drop starts opening the dataset");
    h.state_mut().wait_for_job();
    h.step();
    let w = h.state();
    assert_eq!(w.loaded.as_ref().unwrap().path, d.path());
    assert_eq!(
        w.recent.first().map(PathBuf::as_path),
        Some(d.path()),
        "remembered as recent"
    );
}

#[test]
fn a_dataset_without_images_says_what_its_scan_could_not_do() {
    let d = tiny_dataset();
    let mut w = Workbench::new(d.path().to_path_buf(), vec![], settings());
    w.wait_for_job();
    let notice = w.notice.clone().unwrap_or_default();
    assert!(
        notice.contains(
            "the dataset names no image files: the trigger and fixed-pattern searches did not run"
        ),
        "{notice:?}"
    );
    // Dismissed, it is not raised again by a rescan with another budget.
    w.apply(Action::DismissNotice);
    w.set_fdr(0.10);
    w.wait_for_job();
    assert!(matches!(
        w.loaded.as_ref().unwrap().scan,
        ScanState::Done(_)
    ));
    assert!(w.notice.is_none(), "{:?}", w.notice);
    // The bundled sample, whose images are read, says nothing of the kind.
    let h = harness();
    assert!(
        !h.state()
            .notice
            .clone()
            .unwrap_or_default()
            .contains("image files"),
        "{:?}",
        h.state().notice
    );
}

#[test]
fn an_image_that_cannot_be_decoded_shows_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let mut m = String::from("id,label,path,emb_0,emb_1\n");
    for i in 0..40 {
        image::GrayImage::from_pixel(8, 8, image::Luma([(i * 5) as u8]))
            .save(d.path().join(format!("{i}.png")))
            .unwrap();
        m += &format!(
            "s{i},{},{i}.png,{},{}\n",
            ["a", "b"][i % 2],
            i % 2,
            i as f32 * 0.01
        );
    }
    std::fs::write(d.path().join("5.png"), b"definitely not a png").unwrap();
    std::fs::write(d.path().join("manifest.csv"), m).unwrap();
    let mut w = Workbench::new(d.path().to_path_buf(), vec![], settings());
    w.wait_for_job();
    let mut h = Harness::builder()
        .with_size([1400.0, 860.0])
        .build_ui_state(|ui, w: &mut Workbench| w.show(ui), w);
    h.state_mut().apply(Action::Select(5));
    for _ in 0..100 {
        h.step();
        if h.query_by_label_contains("image unavailable").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The scan's notice names the unreadable file; once dismissed, the
    // placeholder names its problem; the window keeps working.
    let notice = h.state().notice.clone().unwrap_or_default();
    assert!(notice.contains("5.png"), "{notice}");
    h.state_mut().apply(Action::DismissNotice);
    h.step();
    h.get_by_label_contains("cannot decode image");
    h.key_press(Key::X);
    h.step();
    assert_eq!(decision(&mut h, 5), Some(Decision::Exclude));
}

#[test]
fn decisions_survive_closing_the_window_with_their_history() {
    let s = settings();
    let mut h = harness_with(s.clone());
    let first = h.state().current().unwrap();
    h.key_press(Key::X);
    h.step();
    let second = h.state().current().unwrap();
    h.key_press(Key::Space);
    h.step();
    drop(h);

    let mut h = harness_with(s);
    assert_eq!(decision(&mut h, first), Some(Decision::Exclude));
    assert_eq!(decision(&mut h, second), Some(Decision::Keep));
    // Undo after reopening reverts the newest step, then the one before.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(decision(&mut h, second), None);
    assert_eq!(decision(&mut h, first), Some(Decision::Exclude));
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.step();
    assert_eq!(decision(&mut h, first), None);
}

#[test]
fn decisions_from_another_process_appear_in_the_window() {
    let s = settings();
    let mut h = harness_with(s.clone());
    let ds = poisonlens::Dataset::open(&sample(), &Default::default()).unwrap();
    let mut other = poisonlens::review::ReviewSession::open(&ds, s.state_dir.as_deref()).unwrap();
    other
        .decide(&[(7, Decision::Exclude)], "from a script", "robot")
        .unwrap();
    h.state_mut().refresh_review();
    h.step();
    let l = h.state().loaded.as_ref().unwrap();
    let e = l.review().decision(7).unwrap();
    assert_eq!(
        (e.decision, e.reviewer.as_str()),
        (Decision::Exclude, "robot")
    );
    // And the window's own decisions land after it in the shared history.
    h.state_mut().apply(Action::Batch(vec![8], Decision::Keep));
    drop(h);
    let history = other.history().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].reviewer, "tester");
}

#[test]
fn sign_off_dialog_summarises_then_writes_a_verifiable_signed_export() {
    use poisonlens::manifest::{sign, verify};
    let s = settings();
    let dir = s.state_dir.clone().unwrap();
    let key = sign::keygen(&dir.join("key"), "tester@example.org", Some("pw")).unwrap();
    let out = dir.join("export");
    let mut h = harness_with(s);
    let first = h.state().current().unwrap();
    // Hold the store so the decision stays on its way to disk: signing
    // waits for it rather than signing a record without it.
    let lock = hold_write_lock(&h);
    h.key_press(Key::X);
    h.step();
    h.key_press_modifiers(Modifiers::COMMAND, Key::E);
    h.step();
    h.step();
    h.get_by_label("Waiting for the last decisions to be saved…");
    h.state_mut().apply(Action::StartExport);
    assert!(h.state().tasks.export.is_none(), "no export while saving");
    drop(lock);
    h.state_mut().wait_for_saves();
    h.step();
    h.step();
    // The summary of changes is on screen before anything is written,
    // with the flagged samples nobody decided (they are signed as kept).
    h.get_by_label_contains("1 excluded of 3000 samples");
    let undecided = h.state().panels.signoff.as_ref().unwrap().flagged_undecided;
    let l = h.state().loaded.as_ref().unwrap();
    let flagged = l.report.flagged.iter().filter(|&&f| f).count();
    assert_eq!(undecided, flagged - usize::from(l.report.flagged[first]));
    h.get_by_label_contains(&format!("{undecided} flagged samples have no decision"));
    h.get_by_label("Sign and export");
    {
        // The identity is left empty: the key's comment signs.
        let f = h.state_mut().panels.signoff.as_mut().unwrap();
        f.out_dir = out.display().to_string();
        f.key = key.private.display().to_string();
        f.passphrase = "not it".into();
    }
    sign_and_export(&mut h);
    let status = signoff_status(&h).unwrap();
    assert!(status.contains("wrong passphrase"), "{status}");
    assert!(!out.exists(), "nothing is written with a wrong passphrase");

    h.state_mut().panels.signoff.as_mut().unwrap().passphrase = "pw".into();
    sign_and_export(&mut h);
    assert!(
        h.state().panels.signoff.is_none(),
        "the dialog closes when done"
    );
    let notice = h.state().notice.clone().unwrap();
    assert!(notice.contains("signed by tester@example.org"), "{notice}");

    let allowed = dir.join("allowed_signers");
    std::fs::write(&allowed, format!("{}\n", key.allowed_signers_line)).unwrap();
    let v = verify::verify(
        &out,
        &verify::VerifyOptions {
            allowed_signers: Some(allowed),
            ..Default::default()
        },
    );
    assert!(v.ok(), "{:?}", v.problems);
    let record: poisonlens::manifest::record::Record =
        serde_json::from_slice(&std::fs::read(out.join("record.json")).unwrap()).unwrap();
    let l = h.state().loaded.as_ref().unwrap();
    assert_eq!(record.excluded.len(), 1);
    assert_eq!(record.excluded[0].id, l.dataset.ids[first]);
    assert_eq!(record.excluded[0].reviewer, "tester");
    assert_eq!(record.signer.as_deref(), Some("tester@example.org"));
    exporting_again_asks_before_replacing(&mut h, &out, &key.private);
}

/// Clicks "Sign and export" in the open dialog and waits for the export
/// (and its result on screen).
fn sign_and_export(h: &mut Harness<'static, Workbench>) {
    h.get_by_label("Sign and export").click();
    h.step();
    h.state_mut().wait_for_job();
    h.step();
}

/// The sign-off dialog's status line (None: nothing said, or closed).
fn signoff_status(h: &Harness<'static, Workbench>) -> Option<String> {
    h.state()
        .panels
        .signoff
        .as_ref()
        .and_then(|f| f.status.clone())
}

/// The second sign-off offers the key the first used, and will not replace
/// the export already in the folder until the user ticks that it may.
fn exporting_again_asks_before_replacing(
    h: &mut Harness<'static, Workbench>,
    out: &std::path::Path,
    key: &std::path::Path,
) {
    let before = std::fs::read(out.join("record.json")).unwrap();
    let l = h.state().loaded.as_ref().unwrap();
    let next = (0..3000)
        .find(|&i| l.review().decision(i).is_none())
        .unwrap();
    h.state_mut()
        .apply(Action::Batch(vec![next], Decision::Exclude));
    h.state_mut().wait_for_saves();
    h.state_mut().apply(Action::OpenSignoff { sign: true });
    h.step();
    {
        let f = h.state_mut().panels.signoff.as_mut().unwrap();
        assert_eq!(f.key, key.display().to_string(), "the last key is offered");
        f.out_dir = out.display().to_string();
        f.passphrase = "pw".into();
    }
    sign_and_export(h);
    let status = signoff_status(h).unwrap();
    assert!(status.contains("already holds an export"), "{status}");
    let now = std::fs::read(out.join("record.json")).unwrap();
    assert!(now == before, "the export in the folder is left as it was");
    h.get_by_label("Replace the export already in this folder")
        .click();
    h.state_mut().panels.signoff.as_mut().unwrap().passphrase = "pw".into();
    h.step();
    sign_and_export(h);
    assert!(
        h.state().panels.signoff.is_none(),
        "{:?}",
        h.state().panels.signoff.as_ref().map(|f| &f.status)
    );
    let record: poisonlens::manifest::record::Record =
        serde_json::from_slice(&std::fs::read(out.join("record.json")).unwrap()).unwrap();
    assert_eq!(
        record.excluded.len(),
        2,
        "the new decision is in the new export"
    );
}

#[test]
fn reopening_a_changed_dataset_warns_in_the_window() {
    let d = tempfile::tempdir().unwrap();
    let row = |i: usize| format!("s{i},{},{},{}\n", ["a", "b"][i % 2], i % 2, i as f32 * 0.01);
    let mut m = String::from("id,label,emb_0,emb_1\n");
    for i in 0..40 {
        m += &row(i);
    }
    std::fs::write(d.path().join("manifest.csv"), &m).unwrap();
    let open = || {
        let mut w = Workbench::new(d.path().to_path_buf(), vec![], Settings::default());
        w.wait_for_job();
        assert!(w.loaded.is_some(), "{:?}", w.error);
        w
    };
    let mut w = open();
    let first = w.notice.clone().unwrap_or_default();
    assert!(!first.contains("the dataset changed"), "{first}");
    w.apply(Action::Batch(vec![3], Decision::Exclude));
    drop(w);
    assert!(d.path().join("manifest.review.sqlite").exists());
    std::fs::write(d.path().join("manifest.csv"), m + &row(40)).unwrap();
    let w = open();
    let notice = w.notice.clone().unwrap_or_default();
    assert!(notice.contains("the dataset changed"), "{notice}");
    let l = w.loaded.as_ref().unwrap();
    assert_eq!(l.review().decision(3).unwrap().decision, Decision::Exclude);
}

fn trigger_carriers(h: &Harness<'_, Workbench>) -> Vec<usize> {
    let r = &h.state().loaded.as_ref().unwrap().report;
    (0..r.ids.len())
        .filter(|&i| r.trigger_of[i].is_some())
        .collect()
}

#[test]
fn a_carrier_the_pattern_search_added_to_a_stamp_shows_it_without_a_box() {
    // The sample's stamp is found by the window search (with a box on each
    // carrier) and by the fixed-pattern search, listed once; an image only
    // the second holds points to the stamp and says why it has no box.
    let mut h = harness();
    let r = &h.state().loaded.as_ref().unwrap().report;
    assert_eq!(r.triggers.len(), 1);
    let joined: Vec<usize> = (0..r.ids.len())
        .filter(|&i| r.trigger_of[i] == Some(0) && r.trigger_box[i].is_none())
        .collect();
    assert!(!joined.is_empty(), "the pattern search adds a carrier");
    let total = (0..r.ids.len())
        .filter(|&i| r.trigger_of[i].is_some())
        .count();
    assert_eq!(r.triggers[0].carriers, total);
    h.state_mut().apply(Action::Select(joined[0]));
    h.step();
    h.step();
    h.get_by_label("Suspected trigger (patch)");
    h.get_by_label_contains("no box: the fixed-pattern search");
    h.get_by_label(&format!("Select all {total} with this trigger"));
}

#[test]
fn the_trigger_is_shown_toggled_with_t_and_its_carriers_selected() {
    let mut h = harness();
    let carriers = trigger_carriers(&h);
    assert!(
        carriers.len() > 100,
        "the sample's backdoor is found from its images"
    );
    h.state_mut().apply(Action::Select(carriers[0]));
    h.step();
    h.step();
    h.get_by_label("Suspected trigger (patch)");
    h.get_by_label_contains("box shown");
    h.key_press(Key::T);
    h.step();
    assert!(!h.state().show_trigger);
    h.get_by_label_contains("box hidden");
    h.key_press(Key::T);
    h.step();
    assert!(h.state().show_trigger);
    h.get_by_label(&format!("Select all {} with this trigger", carriers.len()))
        .click();
    h.step();
    h.step();
    assert_eq!(h.state().selection, carriers);
    // The whole trigger group goes in one undoable step.
    h.step(); // the selection box settles its layout
    h.get_by_label("Exclude selection").click();
    h.step();
    h.step();
    h.get_by_label(&format!("Apply to {} samples", carriers.len()))
        .click();
    h.step();
    assert!(
        carriers
            .iter()
            .all(|&i| decision(&mut h, i) == Some(Decision::Exclude))
    );
}

#[test]
fn find_trigger_in_a_hand_picked_selection() {
    let mut h = harness();
    let carriers = trigger_carriers(&h);
    let plain = (0..3000).find(|i| !carriers.contains(i)).unwrap();
    h.state_mut().apply(Action::Select(plain));
    let picked: Vec<usize> = carriers.iter().copied().step_by(10).collect();
    h.state_mut().apply(Action::SelectMany(picked));
    h.step();
    h.step();
    h.get_by_label("Find trigger in selection").click();
    h.step();
    h.state_mut().wait_for_job();
    h.step();
    let n = {
        let f = h.state().found.as_ref().expect("searched");
        assert!(f.trigger.is_some(), "{}", f.message);
        f.carriers.len()
    };
    h.get_by_label_contains("images carry it");
    h.get_by_label(&format!("Select all {n} with this trigger"))
        .click();
    h.step();
    assert_eq!(h.state().selection.len(), n);
}

#[test]
fn the_false_flag_budget_rescans_and_keeps_the_decisions() {
    let mut h = harness();
    h.get_by_label_contains("False-flag budget 5%:");
    h.state_mut().apply(Action::Batch(vec![4], Decision::Keep));
    let before = h.state().loaded.as_ref().unwrap().report.flagged_count();
    // Picked from the queue's selector.
    h.get_by_label("False-flag budget").click();
    for _ in 0..3 {
        h.step();
    }
    h.get_by_label("1%").click();
    h.step();
    assert_eq!(h.state().settings.fdr, 0.01);
    h.state_mut().wait_for_job();
    h.step();
    let l = h.state().loaded.as_ref().unwrap();
    assert_eq!(l.report.fdr, 0.01, "scanned again with the new budget");
    assert!(
        l.report.flagged_count() <= before,
        "a stricter budget never adds flags"
    );
    assert_eq!(
        decision(&mut h, 4),
        Some(Decision::Keep),
        "decisions are kept"
    );
    h.get_by_label_contains("False-flag budget 1%:");
    // Out-of-range budgets are ignored.
    h.state_mut().apply(Action::SetFdr(0.9));
    assert_eq!(h.state().settings.fdr, 0.01);
    assert!(!h.state().is_busy());
}

#[test]
fn every_background_job_is_in_one_list_shown_waited_for_and_cancelled() {
    let mut h = harness();
    // The trigger search of a selection shows progress like the others.
    h.state_mut().state.selection = (0..200).collect();
    h.state_mut().apply(Action::FindTrigger);
    assert!(h.state().tasks.trigger.is_some());
    assert_eq!(
        h.state().tasks.progress().len(),
        1,
        "its progress is listed"
    );
    h.state_mut().apply(Action::Cancel);
    assert!(!h.state().is_busy(), "Cancel drops the trigger search too");
    // The wait for jobs includes t-SNE.
    h.state_mut().apply(Action::UseTsne);
    assert!(h.state().is_busy());
    h.state_mut().wait_for_job();
    assert!(!h.state().is_busy());
    assert_eq!(
        h.state().loaded.as_ref().unwrap().projection.method,
        "t-SNE"
    );
}

#[test]
fn the_dataset_shows_before_its_scan_and_flags_arrive_detector_by_detector() {
    let mut w = Workbench::new(sample(), vec![], settings());
    w.wait_for_open();
    let l = w.loaded.as_ref().expect("opened");
    let n = l.dataset.len();
    // Looked at first: every sample placed in the view, nothing flagged yet,
    // every detector still to run.
    assert_eq!(l.projection.points.len(), n);
    assert_eq!(l.report.flagged_count(), 0);
    assert!(w.queue.is_empty());
    let ScanState::Running {
        waiting,
        stage_by_stage,
    } = &l.scan
    else {
        panic!("the scan runs behind: {:?}", l.scan)
    };
    assert!(*stage_by_stage);
    assert_eq!(waiting.len(), poisonlens::detect::REGISTRY.len());
    // Each detector's result joins the queue as it arrives.
    let task = w
        .state
        .tasks
        .scan
        .take()
        .expect("scan started with the open");
    let mut seen = Vec::new();
    let mut queue_sizes = Vec::new();
    while let Ok(stage) = task.stages.recv() {
        seen.push(stage.evidence.scores.name);
        let l = w.state.loaded.as_mut().unwrap();
        l.take_stage(stage);
        let ScanState::Running { waiting, .. } = &l.scan else {
            panic!("still running")
        };
        assert_eq!(
            waiting.len(),
            poisonlens::detect::REGISTRY.len() - seen.len()
        );
        w.rebuild_queue();
        queue_sizes.push(w.queue.len());
    }
    let names: Vec<&str> = poisonlens::detect::detector_infos()
        .map(|d| d.name)
        .collect();
    assert_eq!(seen, names, "every detector once, in order");
    assert!(queue_sizes[0] > 0, "the label check's flags come first");
    let staged: Vec<bool> = w.loaded.as_ref().unwrap().report.flagged.clone();
    w.state.tasks.scan = Some(task);
    w.wait_for_job();
    let l = w.loaded.as_ref().unwrap();
    assert!(matches!(l.scan, ScanState::Done(_)), "{:?}", l.scan);
    assert_eq!(
        staged, l.report.flagged,
        "stage by stage ends at the scan's verdict"
    );
    assert_eq!(w.queue.len(), l.report.flagged_count());
    assert_eq!(*queue_sizes.last().unwrap(), w.queue.len());
}

#[test]
fn a_cancelled_scan_leaves_the_data_open_and_can_be_started_again() {
    let mut h = {
        let mut w = Workbench::new(sample(), vec![], settings());
        w.wait_for_open();
        w.apply(Action::Cancel);
        w.wait_for_job();
        Harness::builder()
            .with_size([1400.0, 860.0])
            .build_ui_state(|ui, w: &mut Workbench| w.show(ui), w)
    };
    h.step();
    let l = h.state().loaded.as_ref().expect("the data stays open");
    assert!(matches!(l.scan, ScanState::Stopped(_)), "{:?}", l.scan);
    assert_eq!(l.report.flagged_count(), 0);
    assert!(h.state().error.is_none(), "a cancel is not a failure");
    h.get_by_label_contains("Scan stopped");
    h.get_by_label("Scan again").click();
    h.step();
    assert!(h.state().tasks.scan.is_some());
    h.state_mut().wait_for_job();
    h.step();
    let l = h.state().loaded.as_ref().unwrap();
    assert!(matches!(l.scan, ScanState::Done(_)));
    assert!(l.report.flagged_count() > 0);
}

#[test]
fn a_rasterized_view_keeps_its_extent_while_frames_are_drawn() {
    use poisonlens::ui::scatter_view;
    // More points than are drawn one by one: the density raster is shown.
    let n = 30_000;
    let points: Vec<[f32; 2]> = (0..n)
        .map(|i| {
            let t = i as f32 * 0.001;
            [t.cos() * (1.0 + t % 3.0), t.sin() * (1.0 + t % 2.0)]
        })
        .collect();
    let group: Vec<u16> = (0..n).map(|i| (i % 3) as u16).collect();
    let names: Vec<String> = (0..3).map(|g| format!("g{g}")).collect();
    let colors = vec![
        egui::Color32::RED,
        egui::Color32::GREEN,
        egui::Color32::BLUE,
    ];
    let views = std::cell::RefCell::new(Vec::new());
    let frame = std::cell::Cell::new(0u64);
    let mut h = Harness::builder().with_size([800.0, 600.0]).build_ui(|ui| {
        // A scan streaming in changes the colouring every few frames.
        frame.set(frame.get() + 1);
        let input = plain_input(&points, &group, &names, &colors, frame.get() / 3);
        let out = scatter_view::show(ui, "extent", &input, |_, _| {});
        views.borrow_mut().push((out.view, out.rasterized));
    });
    for _ in 0..60 {
        h.step();
    }
    let views = views.borrow();
    assert!(views[2..].iter().all(|v| v.1), "drawn as a raster");
    let width = |v: &([f64; 4], bool)| v.0[2] - v.0[0];
    let settled = width(&views[2]);
    let last = width(views.last().unwrap());
    assert!(
        last <= settled * 1.05,
        "the view grew from {settled} to {last} wide over 60 frames"
    );
    assert!(
        settled < 12.0,
        "the view fits the data (about 6 wide): {settled}"
    );
}

/// The wheel zooms the view around the pointer (it used to pan, while the
/// hint said it zoomed); dragging still pans.
#[test]
fn the_wheel_zooms_the_scatter_view() {
    use poisonlens::ui::scatter_view;
    let points: Vec<[f32; 2]> = (0..200)
        .map(|i| [(i % 20) as f32, (i / 20) as f32])
        .collect();
    let group: Vec<u16> = vec![0; 200];
    let names = vec!["g".to_string()];
    let colors = vec![egui::Color32::RED];
    let view = std::cell::Cell::new([0.0f64; 4]);
    let mut h = Harness::builder().with_size([600.0, 600.0]).build_ui(|ui| {
        let input = plain_input(&points, &group, &names, &colors, 0);
        view.set(scatter_view::show(ui, "wheel", &input, |_, _| {}).view);
    });
    h.run_ok();
    let before = view.get();
    h.event(egui::Event::PointerMoved(egui::pos2(300.0, 300.0)));
    for _ in 0..3 {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, 60.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: Modifiers::NONE,
        });
        h.step();
    }
    for _ in 0..30 {
        h.step();
    }
    let after = view.get();
    let width = |v: [f64; 4]| v[2] - v[0];
    assert!(
        width(after) < 0.8 * width(before),
        "zoomed in: {before:?} -> {after:?}"
    );
}

#[test]
fn a_key_pressed_as_the_scan_changes_the_sample_decides_nothing() {
    let mut w = Workbench::new(sample(), vec![], settings());
    w.wait_for_open();
    let mut h = Harness::builder()
        .with_size([1400.0, 860.0])
        .build_ui_state(|ui, w: &mut Workbench| w.show(ui), w);
    h.step();
    assert!(
        h.state().current().is_none(),
        "nothing flagged before the scan"
    );
    // The scan finishes between two frames; the user presses X meanwhile.
    while h.state().tasks.scan.as_ref().unwrap().job.progress().0 != "done" {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    h.key_press(Key::X);
    h.step();
    assert!(h.state().current().is_some(), "flags arrived");
    assert!(
        !h.state().loaded.as_ref().unwrap().review().can_undo(),
        "X was meant for another sample: nothing decided"
    );
    assert!(
        h.state()
            .key_hint
            .as_deref()
            .unwrap_or("")
            .contains("decided nothing"),
        "{:?}",
        h.state().key_hint
    );
    h.state_mut().wait_for_job();
    h.step();
    let shown = h.state().current().unwrap();
    assert_eq!(
        h.state().cursor,
        0,
        "the top of the finished queue is shown"
    );
    h.key_press(Key::X);
    h.step();
    assert_eq!(
        decision(&mut h, shown),
        Some(Decision::Exclude),
        "now it was seen"
    );
}

#[test]
fn every_command_is_reachable_from_a_menu() {
    use poisonlens::ui::commands::{self, Menu};
    let mut h = harness();
    for (menu, title) in [
        (Menu::File, "File"),
        (Menu::Review, "Review"),
        (Menu::View, "View"),
        (Menu::Help, "Help"),
    ] {
        h.get_by_label(title).click();
        h.step();
        h.step();
        for b in commands::in_menu(menu) {
            // A menu entry reads its label and then its first shortcut.
            let key = commands::key_text(&h.ctx, &b.keys[0]);
            h.get_by_label(&format!("{} {key}", b.label));
        }
        if menu == Menu::Review {
            // The digits: one entry per class, under "Relabel to class".
            h.get_by_label("Relabel to class").hover();
            h.step();
            h.step();
            let i = h.state().current().unwrap();
            let classes = &h.state().loaded.as_ref().unwrap().dataset.classes;
            let trouser = classes.iter().position(|c| c == "Trouser").unwrap() as u32;
            // Each class with the digit that picks it (the 10th: 0).
            h.get_by_label("Trouser 0").click();
            h.step();
            h.step();
            assert_eq!(decision(&mut h, i), Some(Decision::Relabel(trouser)));
            continue;
        }
        h.key_press(Key::Escape);
        h.step();
        h.step();
    }
    // The trigger toggle, from its menu.
    let before = h.state().show_trigger;
    h.get_by_label("View").click();
    h.step();
    h.step();
    h.get_by_label_contains("Trigger box over images").click();
    h.step();
    assert_ne!(h.state().show_trigger, before);
    // Quit, last in the File menu, asks the window to close.
    h.get_by_label("File").click();
    h.step();
    h.step();
    h.get_by_label_contains("Quit").click();
    h.step();
    let closing = h.output().viewport_output.values().any(|v| {
        v.commands
            .iter()
            .any(|c| matches!(c, egui::ViewportCommand::Close))
    });
    assert!(closing && h.state().quit);
}

#[test]
fn a_decision_waiting_for_another_writer_never_blocks_the_window() {
    let mut h = harness();
    // Another process holds the store's write lock.
    let other = hold_write_lock(&h);
    let first = h.state().current().unwrap();
    let started = std::time::Instant::now();
    h.key_press(Key::X);
    h.step();
    h.step();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the frame waited for the lock"
    );
    let l = h.state().loaded.as_ref().unwrap();
    assert_eq!(l.saver.pending_for(first), Some(Decision::Exclude));
    assert_eq!(
        l.review().decision(first),
        None,
        "not shown as done before it is on disk"
    );
    assert_ne!(
        h.state().current(),
        Some(first),
        "triage moved on meanwhile"
    );
    h.state_mut().apply(Action::Select(first));
    h.step();
    h.get_by_label("Decision: exclude (saving…)");
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(decision(&mut h, first), Some(Decision::Exclude));
    h.step();
    h.get_by_label("Decision: exclude");
}

#[test]
fn the_cluster_map_fits_at_1600_and_scrolls_under_fixed_row_labels_at_1280() {
    for (size, fits) in [([1600.0, 1000.0], true), ([1280.0, 800.0], false)] {
        let mut h = harness_sized(settings(), size);
        h.get_by_label("Cluster map").click();
        h.step();
        h.step();
        let last = h
            .state()
            .loaded
            .as_ref()
            .unwrap()
            .dataset
            .classes
            .last()
            .unwrap()
            .clone();
        let rows = h.state().loaded.as_ref().unwrap().cluster_rows.len();
        let column = |h: &Harness<'_, Workbench>| -> Vec<egui::Rect> {
            h.query_all_by_label_contains(&format!("look like {last}"))
                .map(|n| n.rect())
                .collect()
        };
        assert_eq!(column(&h).len(), rows, "a cell in every row");
        let sample_panel = h.get_by_label_contains("Sample ").rect().left();
        let label = h
            .query_all_by_label_contains(" main: ")
            .next()
            .unwrap()
            .rect();
        let right = column(&h).iter().map(|r| r.right()).fold(0.0, f32::max);
        if fits {
            assert!(
                right <= sample_panel,
                "last column cut off: {right} > {sample_panel}"
            );
            continue;
        }
        assert!(
            right > sample_panel,
            "at 1280 px the map is wider than its panel"
        );
        // Scrolling the heatmap sideways brings the last column in; the row
        // labels stay where they are.
        h.hover_at(egui::pos2(sample_panel - 60.0, label.center().y));
        for _ in 0..10 {
            h.event(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(-100.0, 0.0),
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Unknown,
                modifiers: egui::Modifiers::NONE,
            });
            h.step();
        }
        h.step();
        let after = column(&h).iter().map(|r| r.right()).fold(0.0, f32::max);
        assert!(
            after <= sample_panel,
            "scrolled into view: {after} > {sample_panel}"
        );
        let label_after = h
            .query_all_by_label_contains(" main: ")
            .next()
            .unwrap()
            .rect();
        assert_eq!(label.left(), label_after.left(), "row labels stay put");
    }
}

#[test]
fn opening_another_dataset_neither_waits_for_nor_loses_a_pending_decision() {
    let mut h = harness();
    // Another process holds the store's write lock.
    let other = hold_write_lock(&h);
    let first = h.state().current().unwrap();
    let first_id = h.state().loaded.as_ref().unwrap().dataset.ids[first].clone();
    h.key_press(Key::X);
    h.step();
    // Another dataset, opened while that decision waits for the lock.
    let d = tiny_dataset();
    let started = std::time::Instant::now();
    h.state_mut().apply(Action::Open(d.path().to_path_buf()));
    h.state_mut().wait_for_open();
    h.step();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the window waited for the old dataset's write"
    );
    assert_eq!(h.state().loaded.as_ref().unwrap().path, d.path());
    other.execute_batch("COMMIT").unwrap();
    h.state_mut().wait_for_saves();
    // The first dataset's store holds the decision.
    let ds = poisonlens::Dataset::open(&sample(), &Default::default()).unwrap();
    let state_dir = h.state().settings.state_dir.clone();
    let r = poisonlens::review::ReviewSession::open(&ds, state_dir.as_deref()).unwrap();
    let i = ds.ids.iter().position(|x| *x == first_id).unwrap();
    assert_eq!(
        r.review().decision(i).map(|e| e.decision),
        Some(Decision::Exclude)
    );
}

/// Another process's hold on the open dataset's review store: a
/// transaction that has taken the write lock (released on COMMIT or drop).
fn hold_write_lock(h: &Harness<'_, Workbench>) -> rusqlite::Connection {
    let store = h.state().loaded.as_ref().unwrap().session.store_path();
    let other = rusqlite::Connection::open(store).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    other
}

/// A 60-sample, two-class dataset with 2-d embeddings in a folder of its own.
fn tiny_dataset() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut m = String::from("id,label,emb_0,emb_1\n");
    for i in 0..60 {
        m += &format!("s{i},{},{},{}\n", ["a", "b"][i % 2], i % 2, i as f32 * 0.01);
    }
    std::fs::write(d.path().join("manifest.csv"), m).unwrap();
    d
}

#[test]
fn a_fifo_where_the_review_store_goes_is_an_error_in_the_window_not_a_hang() {
    // Both review sessions (the writer thread's and the window's reader)
    // open the store through one path; a FIFO there must fail at once.
    let d = tiny_dataset();
    let fifo = d.path().join("manifest.review.sqlite");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let settings = Settings {
        state_dir: None,
        ..settings()
    };
    let mut w = Workbench::new(d.path().to_path_buf(), vec![], settings);
    let started = std::time::Instant::now();
    w.wait_for_job();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(w.loaded.is_none(), "nothing opened on a FIFO store");
    let e = w.error.clone().unwrap_or_default();
    assert!(e.contains("manifest.review.sqlite"), "{e}");
}

#[test]
fn the_status_line_says_what_its_class_numbers_are_and_stays_one_line() {
    let mut h = harness_sized(settings(), [1280.0, 800.0]);
    h.step();
    let explained = h
        .get_by_label("per class, reviewed/excluded/relabelled:")
        .rect();
    let total = h.get_by_label_contains("Reviewed 0 · kept 0").rect();
    let first_class = h.state().loaded.as_ref().unwrap().dataset.classes[0].clone();
    let class = h.get_by_label(&format!("{first_class} 0/0/0")).rect();
    // On one line: the class numbers beside the totals, not wrapped below.
    assert!(
        (class.center().y - total.center().y).abs() < 4.0,
        "{class:?} vs {total:?}"
    );
    assert!((explained.center().y - total.center().y).abs() < 4.0);
    assert!(
        explained.left() < class.left(),
        "the explanation comes first"
    );
}

/// A double-click resets the view; it must not also pick the point under
/// it (which would show that sample and add it to the queue). A single
/// click picks it once the double-click time has passed.
#[test]
fn a_double_click_picks_no_point_and_a_single_click_does() {
    use egui::{Event, PointerButton};
    use poisonlens::ui::scatter_view;
    let points: Vec<[f32; 2]> = vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]];
    let group = vec![0u16; points.len()];
    let names = vec!["all".to_string()];
    let colors = vec![egui::Color32::WHITE];
    let picked = std::cell::RefCell::new(Vec::new());
    let mut h = Harness::builder()
        .with_size([400.0, 400.0])
        .with_step_dt(1.0 / 30.0)
        .build_ui(|ui| {
            let input = plain_input(&points, &group, &names, &colors, 0);
            if let Some(i) = scatter_view::show(ui, "clicks", &input, |_, _| {}).clicked {
                picked.borrow_mut().push(i);
            }
        });
    h.step();
    h.step();
    let centre = h.ctx.content_rect().center();
    let click = |h: &mut Harness<'_>| {
        for pressed in [true, false] {
            h.event(Event::PointerButton {
                pos: centre,
                button: PointerButton::Primary,
                pressed,
                modifiers: Modifiers::NONE,
            });
        }
        h.step();
    };
    h.event(Event::PointerMoved(centre));
    h.step();
    click(&mut h);
    click(&mut h);
    for _ in 0..60 {
        h.step();
    }
    assert!(
        picked.borrow().is_empty(),
        "a double-click picked {:?}",
        picked.borrow()
    );
    click(&mut h);
    for _ in 0..60 {
        h.step();
    }
    assert_eq!(
        *picked.borrow(),
        vec![4],
        "a single click picks the point under it"
    );
}

/// A batch is seen before it applies: the selection's images, then what the
/// decision would replace; Cancel applies nothing, Apply applies it all.
#[test]
fn a_batch_shows_what_it_would_overwrite_before_it_applies() {
    let mut h = harness();
    let picked: Vec<usize> = (100..112).collect();
    // Earlier decisions inside the box: a keep, two relabels, an exclude.
    h.state_mut()
        .apply(Action::Batch(vec![100], Decision::Keep));
    h.state_mut()
        .apply(Action::Batch(vec![101, 102], Decision::Relabel(3)));
    h.state_mut()
        .apply(Action::Batch(vec![103], Decision::Exclude));
    h.state_mut().wait_for_saves();
    h.state_mut().apply(Action::SelectMany(picked.clone()));
    h.step();
    h.get_by_label("Selection: 12 samples");
    h.get_by_label_contains("by label:");
    h.step(); // the selection box settles its layout
    h.get_by_label("Exclude selection").click();
    h.step();
    h.step();
    assert_eq!(h.state().batch, Some(Decision::Exclude));
    h.get_by_label("Exclude 12 samples?");
    h.get_by_label("8 without a decision · 1 already so");
    h.get_by_label("Replaces 3 earlier decisions: 1 keep, 2 relabels");
    assert_eq!(
        decision(&mut h, 100),
        Some(Decision::Keep),
        "nothing applied yet"
    );
    h.get_by_label("Cancel").click();
    h.step();
    assert!(h.state().batch.is_none());
    assert_eq!(decision(&mut h, 100), Some(Decision::Keep));
    assert_eq!(decision(&mut h, 104), None);
    h.step(); // the selection box settles its layout
    h.get_by_label("Exclude selection").click();
    h.step();
    h.step();
    h.get_by_label("Apply to 12 samples").click();
    h.step();
    h.state_mut().wait_for_saves();
    assert!(
        picked
            .iter()
            .all(|&i| decision(&mut h, i) == Some(Decision::Exclude))
    );
    // A new selection drops a proposal made for the old one.
    h.step();
    h.get_by_label("Keep selection").click();
    h.step();
    h.state_mut().apply(Action::SelectMany(vec![5]));
    assert!(h.state().batch.is_none());
}

/// Where no file dialog can be shown (no desktop portal, as on a CI
/// machine), Browse… says so and points to the path field. Skipped where a
/// session bus could show a real dialog, which would wait for a person.
#[test]
fn a_file_dialog_that_cannot_open_says_so() {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        return;
    }
    let mut h = harness_with(settings());
    h.state_mut().apply(Action::OpenSignoff { sign: true });
    for _ in 0..3 {
        h.step();
    }
    let started = std::time::Instant::now();
    h.get_by_label("Browse…").click();
    h.step();
    h.step();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let status = signoff_status(&h);
    assert_eq!(
        status.as_deref(),
        Some(poisonlens::ui::dialogs::TYPE_THE_PATH)
    );
    h.get_by_label(poisonlens::ui::dialogs::TYPE_THE_PATH);
    h.state_mut().apply(Action::CloseSignoff);
    h.state_mut().apply(Action::ShowOpenDialog);
    assert_eq!(
        h.state().error.as_deref(),
        Some(poisonlens::ui::dialogs::OPEN_ANOTHER_WAY)
    );
}

/// What the window showed of a dataset (colouring, the sample on screen)
/// comes back when the dataset is opened again, in a later session.
#[test]
fn the_view_of_a_dataset_is_restored_when_it_is_opened_again() {
    let s = settings();
    let mut h = harness_with(s.clone());
    let unflagged = {
        let r = &h.state().loaded.as_ref().unwrap().report;
        (0..r.flagged.len()).find(|&i| !r.flagged[i]).unwrap()
    };
    h.state_mut().apply(Action::ColorBy(ColorBy::Score));
    h.state_mut().apply(Action::Select(unflagged));
    h.step();
    h.state_mut().state.remember_view();
    let mut views = h.state().settings.views.clone();
    drop(h);
    // As if t-SNE had been shown too: it is computed again on reopening.
    views.values_mut().for_each(|v| v.tsne = true);
    let mut w = Workbench::new(sample(), vec![], Settings { views, ..s });
    w.wait_for_job();
    assert_eq!(w.color_by, ColorBy::Score);
    assert_eq!(
        w.current(),
        Some(unflagged),
        "the sample on screen comes back"
    );
    assert!(w.tsne_wanted());
    assert!(
        w.tasks.projection.is_some(),
        "t-SNE is being computed for the view"
    );
}

/// At 1280 px the embedding header's drop-downs stay inside the centre
/// panel (Colour by was cut off at its right edge).
#[test]
fn the_embedding_header_fits_at_1280() {
    let mut h = harness_sized(settings(), [1280.0, 800.0]);
    h.step();
    h.step();
    let colour = h.get_by_label("Colour by").rect();
    let sample_panel = h.get_by_label_contains("Sample ").rect().left();
    assert!(
        colour.right() <= sample_panel,
        "Colour by ends at {} past the panel at {sample_panel}",
        colour.right()
    );
}

/// The window's new reads fail closed: a FIFO where an export's record is
/// makes the export refuse at once (nothing opened); a remembered key that
/// is a FIFO is refused at once, naming it; a saved view that names a
/// sample and a colouring that do not exist opens the dataset as usual.
#[test]
fn hostile_export_folders_keys_and_saved_views_fail_closed() {
    let s = settings();
    let dir = s.state_dir.clone().unwrap();
    let mkfifo = |p: &std::path::Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let out = dir.join("fifo_export");
    std::fs::create_dir_all(&out).unwrap();
    mkfifo(&out.join("record.json"));
    let key = dir.join("fifo_key");
    mkfifo(&key);
    let mut h = harness_with(Settings {
        signing_key: Some(key.clone()),
        ..s.clone()
    });
    h.state_mut().apply(Action::OpenSignoff { sign: true });
    h.step();
    assert_eq!(
        h.state().panels.signoff.as_ref().unwrap().key,
        key.display().to_string()
    );
    let started = std::time::Instant::now();
    h.state_mut().panels.signoff.as_mut().unwrap().out_dir = out.display().to_string();
    h.state_mut().apply(Action::StartExport);
    h.state_mut().wait_for_job();
    h.step();
    let status = signoff_status(&h).unwrap();
    assert!(status.contains("already holds an export"), "{status}");
    // Allowed to replace it: the key is read next, and it is a FIFO.
    h.state_mut().panels.signoff.as_mut().unwrap().replace = true;
    h.state_mut().apply(Action::StartExport);
    h.state_mut().wait_for_job();
    h.step();
    let status = signoff_status(&h).unwrap();
    assert!(
        status.contains("fifo_key") && status.contains("FIFO"),
        "{status}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "no hang"
    );
    drop(h);

    let lying = poisonlens::ui::views::SavedView {
        color_by: "no such colouring".into(),
        tsne: false,
        sample: Some("no such sample".into()),
        at: 0,
    };
    let views = [(sample().display().to_string(), lying)].into();
    let mut w = Workbench::new(sample(), vec![], Settings { views, ..s });
    w.wait_for_job();
    assert!(w.loaded.is_some() && w.error.is_none(), "{:?}", w.error);
    let opened = w.loaded.as_ref().unwrap().path.display().to_string();
    assert_eq!(
        opened,
        sample().display().to_string(),
        "the lying view was the one looked up"
    );
    assert_eq!(w.color_by, ColorBy::Label);
}

/// With a model (`--model`, File ▸ Open model…) the window scans on its
/// activations and says so; "Stop using model" goes back to the dataset's
/// embeddings; a model that cannot be used is a problem shown in words,
/// and the dataset stays open.
#[test]
fn the_workbench_scans_with_the_users_model_and_can_stop() {
    let model = sample().join("model.onnx");
    let mut h = harness_with(Settings {
        model: Some(poisonlens::dataset::model::ModelOptions::new(&model)),
        ..settings()
    });
    let source = |h: &Harness<'_, Workbench>| {
        h.state()
            .loaded
            .as_ref()
            .unwrap()
            .report
            .feature_source
            .clone()
    };
    assert!(source(&h).contains("layer 'penultimate'"), "{}", source(&h));
    assert!(h.state().loaded.as_ref().unwrap().report.flagged_count() > 0);
    h.get_by_label("· model model.onnx, layer 'penultimate'");
    h.get_by_label("File").click();
    h.run_ok();
    h.get_by_label("Open model…");
    h.get_by_label("Stop using model model.onnx").click();
    h.run_ok();
    h.state_mut().wait_for_job();
    h.run_ok();
    assert!(source(&h).contains("embeddings.npy"), "{}", source(&h));
    assert!(h.state().settings.model.is_none());

    // Dropping an .onnx on the window scans with it (a dataset reopens).
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(model.clone())));
    h.step();
    h.state_mut().wait_for_job();
    h.run_ok();
    assert!(source(&h).contains("layer 'penultimate'"), "{}", source(&h));
    assert_eq!(h.state().loaded.as_ref().unwrap().path, sample());

    // Another dataset opens with its own embeddings: the model was this one's.
    let other = tiny_dataset();
    h.state_mut().open(other.path().to_path_buf());
    h.state_mut().wait_for_job();
    h.run_ok();
    assert_eq!(h.state().loaded.as_ref().unwrap().path, other.path());
    assert!(h.state().settings.model.is_none());
    assert!(h.state().loaded.as_ref().unwrap().model.is_none());
    h.state_mut().open(sample());
    h.state_mut().wait_for_job();
    h.run_ok();

    // A file that is no model: the problem is shown, the data stays open.
    h.state_mut()
        .apply(Action::UseModel(Some(sample().join("manifest.csv"))));
    h.state_mut().wait_for_job();
    h.run_ok();
    let w = h.state();
    assert!(w.loaded.is_some());
    let e = w.error.clone().unwrap_or_default();
    assert!(
        e.contains("manifest.csv") && e.contains("not an ONNX model"),
        "{e}"
    );
    h.get_by_label_contains("not an ONNX model");
}
