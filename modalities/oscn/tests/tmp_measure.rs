use rand::{Rng, SeedableRng};
use rensou_core::rng::DataRng;
use rensou_core::vocab::Colour;
use rensou_core::{ItemRequest, Modality, Split};
use rensou_oscn::{Layout, Oscn, OscnConfig, Renderer, Shape};

#[test]
fn measure() {
    for (s, gap) in [(6, 2), (6, 1), (5, 2), (6, 3)] {
        let config = OscnConfig {
            layout: Layout::Free,
            object_size: s,
            free_min_gap: gap,
            free_max_tries: 1,
            ..OscnConfig::default()
        };
        if config.check().is_err() {
            println!("s={s} gap={gap} invalid");
            continue;
        }
        let r = Renderer::new(&config).unwrap();
        let mut rng = DataRng::seed_from_u64(1);
        let mut fails = 0;
        for _ in 0..2000 {
            if r.render(9, Shape::Square, Colour::Red, &mut rng).is_err() {
                fails += 1;
            }
        }
        println!("s={s} gap={gap}: dead-end rate {}", fails as f64 / 2000.0);
    }
    for layout in [Layout::Grid, Layout::Free] {
        let oscn = Oscn::new(&OscnConfig {
            layout,
            ..OscnConfig::default()
        })
        .unwrap();
        let t = std::time::Instant::now();
        let set = oscn
            .items(&ItemRequest {
                split: Split::Train,
                seed: 1,
                classes: None,
                progress: &|_| {},
            })
            .unwrap();
        println!("{layout:?}: {} items in {:?}", set.len(), t.elapsed());
    }
    let _ = DataRng::seed_from_u64(0).random::<u8>();
}
