//! Properties and behaviour of the OSCN modality through its public API.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use rand::SeedableRng;
use rensou_api::registry::ModalityRegistry;
use rensou_api::rng::DataRng;
use rensou_api::vocab::Colour;
use rensou_api::{
    ClassCounts, Error, ItemRequest, ItemSet, Modality, ModalityConfig, SourceEnv, Split, Supply,
};
use rensou_oscn::{Layout, Oscn, OscnConfig, OscnError, Renderer, Shape, NO_CELLS};
use serde::{Deserialize, Serialize};

fn no_progress(_: u64) {}

fn request(split: Split, seed: u64, classes: Option<&ClassCounts>) -> ItemRequest<'_> {
    ItemRequest {
        split,
        seed,
        classes,
        progress: &no_progress,
    }
}

fn small_config() -> OscnConfig {
    OscnConfig {
        train_per_class: 3,
        test_per_class: 2,
        ..OscnConfig::default()
    }
}

/// 8-connected components of non-black pixels: each as a list of (row, col).
fn components(image: &[u8], size: usize) -> Vec<Vec<(usize, usize)>> {
    let lit = |p: usize| image[p * 3..p * 3 + 3] != [0, 0, 0];
    let mut seen = vec![false; size * size];
    let mut out = Vec::new();
    for start in 0..size * size {
        if seen[start] || !lit(start) {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut comp = Vec::new();
        while let Some(p) = stack.pop() {
            let (r, c) = (p / size, p % size);
            comp.push((r, c));
            for dr in -1i64..=1 {
                for dc in -1i64..=1 {
                    let (nr, nc) = (r as i64 + dr, c as i64 + dc);
                    if nr < 0 || nc < 0 || nr >= size as i64 || nc >= size as i64 {
                        continue;
                    }
                    let q = nr as usize * size + nc as usize;
                    if !seen[q] && lit(q) {
                        seen[q] = true;
                        stack.push(q);
                    }
                }
            }
        }
        out.push(comp);
    }
    out
}

/// The shape among `shapes` whose mask, placed at the component's bounding box, is exactly the
/// component (the first if several match; validation makes configured shapes distinct).
fn identify(
    comp: &[(usize, usize)],
    size: usize,
    shapes: &[Shape],
) -> Option<(Shape, (usize, usize))> {
    let top = comp.iter().map(|p| p.0).min()?;
    let left = comp.iter().map(|p| p.1).min()?;
    let bottom = comp.iter().map(|p| p.0).max()?;
    let right = comp.iter().map(|p| p.1).max()?;
    if bottom - top + 1 != size || right - left + 1 != size {
        return None;
    }
    let mut mask = vec![false; size * size];
    for &(r, c) in comp {
        mask[(r - top) * size + c - left] = true;
    }
    shapes
        .iter()
        .copied()
        .find(|s| s.mask(size) == mask)
        .map(|s| (s, (top, left)))
}

/// Checks one item against its labels; returns a description of the first problem.
fn check_item(
    config: &OscnConfig,
    image: &[u8],
    number: i64,
    colour: i64,
    shape: i64,
    cells: i64,
) -> Result<(), String> {
    let size = config.image_size;
    let o = config.object_size;
    let rgb = Colour::from_index(colour).map_err(|e| e.to_string())?.rgb();
    for (i, px) in image.chunks(3).enumerate() {
        if px != [0, 0, 0] && px != rgb {
            return Err(format!("pixel {i} is {px:?}, colour {colour} is {rgb:?}"));
        }
    }
    let comps = components(image, size);
    if comps.len() as i64 != number {
        return Err(format!("{} components, number {number}", comps.len()));
    }
    let mut corners = Vec::new();
    for comp in &comps {
        let (s, corner) = identify(comp, o, &config.shapes)
            .ok_or_else(|| format!("component {comp:?} is no shape"))?;
        if s.index() != shape {
            return Err(format!("component is a {s}, label says {shape}"));
        }
        corners.push(corner);
    }
    match config.layout {
        Layout::Grid => {
            let half = o / 2;
            let side = config.grid_centres.len();
            let mut mask = 0i64;
            for (top, left) in corners {
                let row = config.grid_centres.iter().position(|&g| g - half == top);
                let col = config.grid_centres.iter().position(|&g| g - half == left);
                let (Some(row), Some(col)) = (row, col) else {
                    return Err(format!("object at {top},{left} is not on a grid cell"));
                };
                mask |= 1 << (row * side + col);
            }
            if mask != cells {
                return Err(format!("cells label {cells:#b}, drawn {mask:#b}"));
            }
        }
        Layout::Free => {
            if cells != NO_CELLS {
                return Err(format!("free layout has cells {cells}"));
            }
            let apart = o + config.free_min_gap;
            for (i, a) in corners.iter().enumerate() {
                for b in &corners[i + 1..] {
                    if a.0.abs_diff(b.0) < apart && a.1.abs_diff(b.1) < apart {
                        return Err(format!("objects at {a:?} and {b:?} are too close"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_set(config: &OscnConfig, set: &ItemSet) -> Result<(), String> {
    set.validate().map_err(|e| e.to_string())?;
    for i in 0..set.len() {
        let l = |n: &str| set.label(n).map(|v| v[i]).map_err(|e| e.to_string());
        check_item(
            config,
            set.item(i),
            l("number")?,
            l("colour")?,
            l("shape")?,
            l("cells")?,
        )
        .map_err(|e| format!("item {i}: {e}"))?;
    }
    Ok(())
}

fn subset<T: Copy + std::fmt::Debug>(all: &'static [T]) -> impl Strategy<Value = Vec<T>> {
    proptest::sample::subsequence(all, 1..=all.len()).prop_shuffle()
}

fn config_strategy() -> impl Strategy<Value = OscnConfig> {
    (
        prop_oneof![Just(Layout::Grid), Just(Layout::Free)],
        3usize..=9,
        1usize..=2,
        subset(&Shape::ALL),
        subset(&Colour::ALL),
    )
        .prop_map(|(layout, object_size, gap, shapes, colours)| {
            // Free layouts with big objects are legal but rarely placeable by random
            // sequential placement; keep them where placement is comfortable.
            let object_size = if layout == Layout::Free {
                object_size.min(6)
            } else {
                object_size
            };
            OscnConfig {
                layout,
                object_size,
                free_min_gap: gap,
                shapes,
                colours,
                ..OscnConfig::default()
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rendered_images_match_their_labels(
        config in config_strategy(),
        seed in any::<u64>(),
        number in 1u32..=9,
        shape_pick in any::<prop::sample::Index>(),
        colour_pick in any::<prop::sample::Index>(),
    ) {
        prop_assume!(config.check().is_ok());
        let shape = *shape_pick.get(&config.shapes);
        let colour = *colour_pick.get(&config.colours);
        let mut rng = DataRng::seed_from_u64(seed);
        let renderer = Renderer::new(&config).unwrap();
        let d = renderer.render(number, shape, colour, &mut rng).unwrap();
        prop_assert_eq!(d.positions.len(), number as usize);
        let r = check_item(
            &config, &d.image, i64::from(number), colour.index(), shape.index(), d.cells,
        );
        prop_assert!(r.is_ok(), "{:?}", r);
    }

    #[test]
    fn generated_sets_match_their_labels(config in config_strategy(), seed in any::<u64>()) {
        prop_assume!(config.check().is_ok());
        let config = OscnConfig { train_per_class: 1, test_per_class: 1, ..config };
        let oscn = Oscn::new(&config).unwrap();
        let set = oscn.items(&request(Split::Train, seed, None)).unwrap();
        prop_assert_eq!(set.len(), 9 * config.colours.len());
        let r = check_set(&config, &set);
        prop_assert!(r.is_ok(), "{:?}", r);
    }
}

#[test]
fn shapes_are_told_apart_by_pixel_count_at_the_paper_size() {
    let counts: Vec<usize> = Shape::ALL.iter().map(|s| s.pixel_count(6)).collect();
    let mut unique = counts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{counts:?}");
    // The triangle differs from the square in its pattern, not just its count.
    assert_ne!(Shape::Triangle.mask(6), Shape::Square.mask(6));
}

#[test]
fn grid_objects_sit_on_cell_centres() {
    let config = OscnConfig {
        min_number: 9,
        ..OscnConfig::default()
    };
    let mut rng = DataRng::seed_from_u64(1);
    let d = Renderer::new(&config)
        .unwrap()
        .render(9, Shape::Square, Colour::White, &mut rng)
        .unwrap();
    assert_eq!(d.cells, 0b1_1111_1111);
    // The object on the (5, 5) centre covers pixels 2..8 on both axes.
    let px = |r: usize, c: usize| &d.image[(r * 32 + c) * 3..(r * 32 + c) * 3 + 3];
    for r in 0..32 {
        for c in 0..32 {
            let inside = |i: usize| [2..8, 12..18, 22..28].iter().any(|band| band.contains(&i));
            let want: &[u8] = if inside(r) && inside(c) {
                &[255, 255, 255]
            } else {
                &[0, 0, 0]
            };
            assert_eq!(px(r, c), want, "pixel {r},{c}");
        }
    }
}

#[test]
fn generation_is_deterministic() {
    for layout in [Layout::Grid, Layout::Free] {
        let config = OscnConfig {
            layout,
            ..small_config()
        };
        let a = Oscn::new(&config).unwrap();
        let b = config.build(&SourceEnv::default()).unwrap();
        for split in Split::ALL {
            let x = a.items(&request(split, 42, None)).unwrap();
            let y = b.items(&request(split, 42, None)).unwrap();
            assert_eq!(x, y, "{layout:?} {split}");
            let z = a.items(&request(split, 43, None)).unwrap();
            assert_ne!(x.data, z.data, "{layout:?} {split}: seed has no effect");
        }
    }
}

#[test]
fn default_sizes_cover_every_class() {
    let config = small_config();
    let oscn = Oscn::new(&config).unwrap();
    for (split, per_class) in [(Split::Train, 3), (Split::Test, 2)] {
        let set = oscn.items(&request(split, 7, None)).unwrap();
        assert_eq!(set.shape, vec![32, 32, 3]);
        assert_eq!(set.len(), 9 * 4 * per_class);
        let mut hist = BTreeMap::new();
        for i in 0..set.len() {
            let key = (
                set.label("number").unwrap()[i],
                set.label("colour").unwrap()[i],
            );
            *hist.entry(key).or_insert(0) += 1;
        }
        assert_eq!(hist.len(), 36);
        assert!(hist.values().all(|&n| n == per_class));
        // Shapes come from the configured list only.
        assert!(set
            .label("shape")
            .unwrap()
            .iter()
            .all(|&s| (0..3).contains(&s)));
        check_set(&config, &set).unwrap();
    }
}

#[test]
fn requested_counts_are_honoured_exactly() {
    let config = OscnConfig {
        colours: vec![Colour::Blue, Colour::Red],
        shapes: vec![Shape::Circle, Shape::Cross],
        ..small_config()
    };
    let oscn = Oscn::new(&config).unwrap();
    let counts = ClassCounts {
        label_names: vec!["colour".into(), "number".into()],
        counts: BTreeMap::from([
            (vec![0, 1], 5),
            (vec![2, 9], 17),
            (vec![2, 4], 0),
            (vec![0, 3], 1),
        ]),
    };
    let set = oscn
        .items(&request(Split::Train, 3, Some(&counts)))
        .unwrap();
    assert_eq!(set.len(), 23);
    let mut hist = BTreeMap::new();
    for i in 0..set.len() {
        let key = vec![
            set.label("colour").unwrap()[i],
            set.label("number").unwrap()[i],
        ];
        *hist.entry(key).or_insert(0usize) += 1;
    }
    let want: BTreeMap<_, _> = counts
        .counts
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, &n)| (k.clone(), n))
        .collect();
    assert_eq!(hist, want);
    assert!(set
        .label("shape")
        .unwrap()
        .iter()
        .all(|&s| s == 2 || s == 3));
    check_set(&config, &set).unwrap();

    // A class's items do not depend on the other classes requested.
    let alone = ClassCounts {
        label_names: counts.label_names.clone(),
        counts: BTreeMap::from([(vec![2, 9], 17)]),
    };
    let alone = oscn.items(&request(Split::Train, 3, Some(&alone))).unwrap();
    let idx: Vec<usize> = (0..set.len())
        .filter(|&i| set.label("colour").unwrap()[i] == 2)
        .collect();
    assert_eq!(set.select(&idx), alone);
}

#[test]
fn number_only_counts_draw_colours_from_the_config() {
    let config = OscnConfig {
        colours: vec![Colour::Green, Colour::White],
        ..small_config()
    };
    let oscn = Oscn::new(&config).unwrap();
    let counts = ClassCounts {
        label_names: vec!["number".into()],
        counts: (1..=9).map(|n| (vec![n], 20)).collect(),
    };
    let set = oscn.items(&request(Split::Test, 5, Some(&counts))).unwrap();
    assert_eq!(set.len(), 180);
    for n in 1..=9 {
        assert_eq!(
            set.label("number")
                .unwrap()
                .iter()
                .filter(|&&x| x == n)
                .count(),
            20
        );
    }
    let colours = set.label("colour").unwrap();
    assert!(colours.iter().all(|&c| c == 1 || c == 3));
    assert!(colours.contains(&1) && colours.contains(&3));
    check_set(&config, &set).unwrap();

    // No key labels at all: numbers are drawn too.
    let any = ClassCounts {
        label_names: vec![],
        counts: BTreeMap::from([(vec![], 50)]),
    };
    let set = oscn.items(&request(Split::Test, 5, Some(&any))).unwrap();
    assert_eq!(set.len(), 50);
    assert!(set
        .label("number")
        .unwrap()
        .iter()
        .all(|n| (1..=9).contains(n)));
    check_set(&config, &set).unwrap();
}

fn counts_error(config: &OscnConfig, names: &[&str], key: Vec<i64>) -> String {
    let counts = ClassCounts {
        label_names: names.iter().map(|s| s.to_string()).collect(),
        counts: BTreeMap::from([(key, 1)]),
    };
    let err = Oscn::new(config)
        .unwrap()
        .items(&request(Split::Train, 0, Some(&counts)))
        .unwrap_err();
    assert!(
        matches!(err, Error::Modality { ref name, .. } if name == "oscn"),
        "{err}"
    );
    err.to_string()
}

#[test]
fn bad_class_requests_are_clear_errors() {
    let config = OscnConfig {
        colours: vec![Colour::Red],
        max_number: 5,
        ..small_config()
    };
    let e = counts_error(&config, &["colour", "number"], vec![0, 6]);
    assert!(e.contains("number 6") && e.contains("1..=5"), "{e}");
    let e = counts_error(&config, &["colour", "number"], vec![0, 0]);
    assert!(e.contains("number 0"), "{e}");
    let e = counts_error(&config, &["colour", "number"], vec![2, 1]);
    assert!(e.contains("colour index 2") && e.contains("0 = red"), "{e}");
    let e = counts_error(&config, &["colour", "number", "shape"], vec![0, 1, 0]);
    assert!(e.contains("`shape`"), "{e}");
    let e = counts_error(&config, &["number", "number"], vec![1, 1]);
    assert!(e.contains("twice"), "{e}");
    let e = counts_error(&config, &["number"], vec![1, 2]);
    assert!(e.contains("2 values"), "{e}");
}

#[test]
fn progress_reports_every_item() {
    let config = OscnConfig {
        train_per_class: 40,
        ..OscnConfig::default()
    };
    let done = AtomicU64::new(0);
    let calls = AtomicU64::new(0);
    let progress = |k: u64| {
        done.fetch_add(k, Ordering::Relaxed);
        calls.fetch_add(1, Ordering::Relaxed);
    };
    let set = Oscn::new(&config)
        .unwrap()
        .items(&ItemRequest {
            split: Split::Train,
            seed: 1,
            classes: None,
            progress: &progress,
        })
        .unwrap();
    assert_eq!(set.len(), 1440);
    assert_eq!(done.load(Ordering::Relaxed), 1440);
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[test]
fn impossible_free_layouts_fail_with_a_layout_error() {
    // 16 boxes of 8 px fit in 34 px only as a perfect 4x4 packing, which random placement
    // essentially never finds.
    let config = OscnConfig {
        layout: Layout::Free,
        max_number: 16,
        min_number: 16,
        free_max_tries: 3,
        ..OscnConfig::default()
    };
    config.check().unwrap();
    let mut rng = DataRng::seed_from_u64(0);
    let err = Renderer::new(&config)
        .unwrap()
        .render(16, Shape::Square, Colour::Red, &mut rng)
        .unwrap_err();
    let Error::Modality { name, source } = &err else {
        panic!("{err}")
    };
    assert_eq!(name, "oscn");
    assert_eq!(
        source.downcast_ref::<OscnError>(),
        Some(&OscnError::Layout {
            number: 16,
            tries: 3
        })
    );
}

#[test]
fn the_paper_free_layout_is_placeable() {
    let config = OscnConfig {
        layout: Layout::Free,
        min_number: 9,
        free_max_tries: 100,
        ..OscnConfig::default()
    };
    let renderer = Renderer::new(&config).unwrap();
    let mut rng = DataRng::seed_from_u64(9);
    for _ in 0..300 {
        let d = renderer
            .render(9, Shape::Triangle, Colour::Green, &mut rng)
            .unwrap();
        check_item(&config, &d.image, 9, 1, 1, d.cells).unwrap();
    }
}

#[test]
fn numbers_outside_the_config_are_refused_by_the_renderer() {
    let config = OscnConfig {
        min_number: 2,
        max_number: 4,
        ..OscnConfig::default()
    };
    let r = Renderer::new(&config).unwrap();
    let mut rng = DataRng::seed_from_u64(0);
    assert!(r.render(1, Shape::Square, Colour::Red, &mut rng).is_err());
    assert!(r.render(5, Shape::Square, Colour::Red, &mut rng).is_err());
    assert!(r.render(4, Shape::Square, Colour::Red, &mut rng).is_ok());
    let (image, cells) =
        rensou_oscn::render(&config, 3, Shape::Cross, Colour::Blue, &mut rng).unwrap();
    assert_eq!(image.len(), 3072);
    assert_eq!(cells.count_ones(), 3);
}

#[test]
fn draw_object_checks_bounds() {
    let mut image = vec![0u8; 8 * 8 * 3];
    rensou_oscn::draw_object(&mut image, 8, Shape::Cross, 3, 5, 5, Colour::Green).unwrap();
    assert_eq!(image.iter().filter(|&&b| b == 255).count(), 5);
    assert!(rensou_oscn::draw_object(&mut image, 8, Shape::Cross, 3, 6, 0, Colour::Red).is_err());
    assert!(rensou_oscn::draw_object(&mut image, 9, Shape::Cross, 3, 0, 0, Colour::Red).is_err());
}

fn config_field_error(f: impl FnOnce(&mut OscnConfig)) -> (String, String) {
    let mut config = OscnConfig::default();
    f(&mut config);
    match config.validate() {
        Err(e @ Error::Config { .. }) => {
            let Error::Config { ref field, .. } = e else {
                unreachable!()
            };
            (field.clone(), e.to_string())
        }
        other => panic!("{config:?} gave {other:?}"),
    }
}

#[test]
fn validation_names_the_field() {
    type Mutator = Box<dyn FnOnce(&mut OscnConfig)>;
    let cases: Vec<(&str, Mutator)> = vec![
        ("image_size", Box::new(|c| c.image_size = 0)),
        ("image_size", Box::new(|c| c.image_size = 5000)),
        ("object_size", Box::new(|c| c.object_size = 0)),
        ("object_size", Box::new(|c| c.object_size = 33)),
        // Too small to tell the shapes apart.
        ("object_size", Box::new(|c| c.object_size = 2)),
        (
            "object_size",
            Box::new(|c| {
                c.object_size = 3;
                c.shapes = vec![Shape::Square, Shape::Circle];
            }),
        ),
        ("min_number", Box::new(|c| c.min_number = 0)),
        ("max_number", Box::new(|c| c.max_number = 0)),
        (
            "max_number",
            Box::new(|c| {
                c.min_number = 5;
                c.max_number = 4;
            }),
        ),
        // More objects than grid cells.
        ("max_number", Box::new(|c| c.max_number = 10)),
        // More objects than can fit freely.
        (
            "max_number",
            Box::new(|c| {
                c.layout = Layout::Free;
                c.max_number = 17;
            }),
        ),
        ("shapes", Box::new(|c| c.shapes.clear())),
        (
            "shapes",
            Box::new(|c| c.shapes = vec![Shape::Cross, Shape::Square, Shape::Cross]),
        ),
        ("colours", Box::new(|c| c.colours.clear())),
        (
            "colours",
            Box::new(|c| c.colours = vec![Colour::Red, Colour::Red]),
        ),
        ("grid_centres", Box::new(|c| c.grid_centres.clear())),
        (
            "grid_centres",
            Box::new(|c| c.grid_centres = (0..8).map(|i| 4 * i + 2).collect()),
        ),
        (
            "grid_centres",
            Box::new(|c| c.grid_centres = vec![15, 5, 25]),
        ),
        (
            "grid_centres",
            Box::new(|c| c.grid_centres = vec![5, 5, 25]),
        ),
        // Objects leave the image.
        (
            "grid_centres",
            Box::new(|c| c.grid_centres = vec![2, 15, 25]),
        ),
        (
            "grid_centres",
            Box::new(|c| c.grid_centres = vec![5, 15, 30]),
        ),
        // Neighbouring objects touch (6 px objects 6 px apart) or overlap.
        (
            "grid_centres",
            Box::new(|c| c.grid_centres = vec![5, 11, 25]),
        ),
        (
            "grid_centres",
            Box::new(|c| c.grid_centres = vec![5, 9, 25]),
        ),
        (
            "grid_centres",
            Box::new(|c| {
                c.object_size = 10;
            }),
        ),
        ("free_min_gap", Box::new(|c| c.free_min_gap = 0)),
        ("free_min_gap", Box::new(|c| c.free_min_gap = 33)),
        ("free_max_tries", Box::new(|c| c.free_max_tries = 0)),
        ("train_per_class", Box::new(|c| c.train_per_class = 0)),
        ("test_per_class", Box::new(|c| c.test_per_class = 0)),
    ];
    for (want, mutate) in cases {
        let (field, message) = config_field_error(mutate);
        assert_eq!(field, format!("oscn.{want}"), "{message}");
        assert!(message.contains(&format!("oscn.{want}")), "{message}");
    }
}

#[test]
fn valid_variants_pass_validation() {
    OscnConfig::default().validate().unwrap();
    // Touching-free at the limit: 7 px apart for 6 px objects leaves one black pixel.
    OscnConfig {
        grid_centres: vec![5, 12, 19],
        ..OscnConfig::default()
    }
    .validate()
    .unwrap();
    // A free layout on a small image ignores the (unused) default grid.
    OscnConfig {
        layout: Layout::Free,
        image_size: 16,
        object_size: 4,
        max_number: 4,
        ..OscnConfig::default()
    }
    .validate()
    .unwrap();
    // All four shapes are distinguishable at the paper's size.
    OscnConfig {
        shapes: Shape::ALL.to_vec(),
        ..OscnConfig::default()
    }
    .validate()
    .unwrap();
    // A config that fails validation cannot be built.
    let bad = OscnConfig {
        max_number: 10,
        ..OscnConfig::default()
    };
    assert!(Oscn::new(&bad).is_err());
    assert!(bad.build(&SourceEnv::default()).is_err());
}

#[derive(Serialize, Deserialize)]
struct Experiment {
    modalities: Vec<Box<dyn ModalityConfig>>,
}

#[test]
fn toml_round_trip_through_the_trait_object() {
    let text = r#"
        [[modalities]]
        type = "oscn"
        object_size = 5
        layout = "free"
        shapes = ["circle", "triangle"]
        colours = ["white", "blue"]
    "#;
    let exp: Experiment = toml::from_str(text).unwrap();
    assert_eq!(exp.modalities.len(), 1);
    let config = &exp.modalities[0];
    config.validate().unwrap();
    let want = OscnConfig {
        object_size: 5,
        layout: Layout::Free,
        shapes: vec![Shape::Circle, Shape::Triangle],
        colours: vec![Colour::White, Colour::Blue],
        ..OscnConfig::default()
    };
    let mut want_json = serde_json::to_value(&want).unwrap();
    want_json["type"] = "oscn".into();
    assert_eq!(serde_json::to_value(config).unwrap(), want_json);

    let again = toml::to_string(&exp).unwrap();
    assert!(again.contains("type = \"oscn\""), "{again}");
    let back: Experiment = toml::from_str(&again).unwrap();
    assert_eq!(
        serde_json::to_value(&back.modalities[0]).unwrap(),
        want_json
    );

    let modality = config.clone().build(&SourceEnv::default()).unwrap();
    assert_eq!(modality.name(), "oscn");
    assert_eq!(modality.supply(), Supply::Generative);

    // Defaults fill every field; unknown fields are refused.
    let exp: Experiment = toml::from_str("[[modalities]]\ntype = \"oscn\"\n").unwrap();
    let mut default_json = serde_json::to_value(OscnConfig::default()).unwrap();
    default_json["type"] = "oscn".into();
    assert_eq!(
        serde_json::to_value(&exp.modalities[0]).unwrap(),
        default_json
    );
    let bad = toml::from_str::<Experiment>("[[modalities]]\ntype = \"oscn\"\nobjects = 3\n");
    assert!(bad.is_err());
    let bad =
        toml::from_str::<Experiment>("[[modalities]]\ntype = \"oscn\"\nlayout = \"spiral\"\n");
    assert!(bad.is_err());
}

#[test]
fn the_plugin_is_registered_under_its_typetag_name() {
    let registry = ModalityRegistry::collect().unwrap();
    assert!(registry.names().contains(&"oscn"));
    registry.check_names().unwrap();
    let plugin = registry.get("oscn").unwrap();
    let config = (plugin.default_config)();
    config.validate().unwrap();
    assert_eq!(
        serde_json::to_value(&config).unwrap()["max_number"],
        serde_json::json!(9)
    );
}

#[test]
fn label_indices_are_stable() {
    let oscn = Oscn::new(&OscnConfig {
        shapes: vec![Shape::Cross],
        colours: vec![Colour::White],
        ..small_config()
    })
    .unwrap();
    assert_eq!(oscn.name(), "oscn");
    assert_eq!(oscn.item_shape(), vec![32, 32, 3]);
    let labels = oscn.labels();
    let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["number", "colour", "shape", "cells"]);
    assert_eq!(labels[0], rensou_api::vocab::number_label_spec());
    assert_eq!(labels[1], Colour::label_spec());
    let shape_values: Vec<(i64, &str)> = labels[2]
        .values
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    assert_eq!(
        shape_values,
        [(0, "square"), (1, "triangle"), (2, "cross"), (3, "circle")]
    );
    assert!(labels[3].values.is_empty());
    let set = oscn.items(&request(Split::Test, 0, None)).unwrap();
    assert!(set.label("shape").unwrap().iter().all(|&s| s == 2));
    assert!(set.label("colour").unwrap().iter().all(|&c| c == 3));
    assert_eq!(serde_json::to_value(Shape::Triangle).unwrap(), "triangle");
    assert_eq!(serde_json::to_value(Layout::Free).unwrap(), "free");
    for (i, s) in Shape::ALL.iter().enumerate() {
        assert_eq!(s.index(), i as i64);
    }
}
