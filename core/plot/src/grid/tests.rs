use super::*;

/// A `h x w` tile of one colour.
fn solid(h: usize, w: usize, rgb: [u8; 3]) -> ImageTile {
    ImageTile {
        height: h,
        width: w,
        rgb: rgb.repeat(h * w),
        caption: None,
    }
}

fn at(img: &RgbImage, x: u32, y: u32) -> [u8; 3] {
    img.get_pixel(x, y).0
}

#[test]
fn enlarging_repeats_pixels_like_a_nearest_neighbour_resize() {
    let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([(x * 31) as u8, (y * 47) as u8, 9]));
    for zoom in [1, 2, 3] {
        let ours = enlarge(&img, zoom);
        let theirs = image::imageops::resize(
            &img,
            7 * zoom,
            5 * zoom,
            image::imageops::FilterType::Nearest,
        );
        assert!(ours == theirs, "zoom {zoom}");
    }
}

#[test]
fn groups_markers_gaps_and_centring_fall_where_the_rules_say() {
    let style = GridStyle {
        background: [1, 1, 1],
        gap: 2,
        group_gap: 5,
        marker_width: 3,
        align: Align::Centre,
        margin_top: 4,
        ..GridStyle::default()
    };
    let red = [200, 0, 0];
    let rows = vec![
        GridRow::new(vec![solid(4, 4, red), solid(4, 4, red)])
            .with_marker([9, 9, 9])
            .starting_group(),
        GridRow::new(vec![solid(2, 2, [0, 200, 0])]).with_marker([8, 8, 8]),
        GridRow::new(vec![solid(4, 4, red)]).starting_group(),
    ];
    let grid = ImageGrid::new(rows, style);
    // Width: marker 3 + gap 2, then 2 cells of 4 + 2. Height: top 4, 3 rows of 4 + 2, group 5.
    assert_eq!(grid.size().unwrap(), (5 + 2 * 6, 4 + 3 * 6 + 5));
    let img = grid.paint().unwrap();
    assert_eq!(img.dimensions(), (17, 27));
    assert_eq!(at(&img, 0, 4), [9, 9, 9], "first marker");
    assert_eq!(at(&img, 2, 7), [9, 9, 9]);
    assert_eq!(at(&img, 3, 4), [1, 1, 1], "the gap after the marker");
    assert_eq!(at(&img, 5, 4), red, "first tile");
    assert_eq!(at(&img, 11, 7), red, "second cell");
    assert_eq!(at(&img, 0, 10), [8, 8, 8], "second row's marker");
    assert_eq!(at(&img, 6, 10), [1, 1, 1], "a small tile is centred");
    assert_eq!(at(&img, 6, 11), [0, 200, 0]);
    assert_eq!(at(&img, 8, 11), [1, 1, 1]);
    assert_eq!(at(&img, 5, 16), [1, 1, 1], "the group gap");
    assert_eq!(at(&img, 5, 21), red, "third row after the group gap");
    assert_eq!(at(&img, 0, 21), [1, 1, 1], "no marker");
}

#[test]
fn scale_and_zoom_enlarge_tiles_and_the_canvas() {
    let rows = vec![GridRow::new(vec![solid(1, 2, [5, 6, 7])])];
    let style = GridStyle {
        scale: 3,
        gap: 1,
        ..GridStyle::default()
    };
    let img = ImageGrid::new(rows.clone(), style.clone()).paint().unwrap();
    assert_eq!(img.dimensions(), (7, 4));
    let zoomed = GridStyle { zoom: 2, ..style };
    let big = ImageGrid::new(rows, zoomed).paint().unwrap();
    assert!(big == enlarge(&img, 2));
}

#[test]
fn columns_labels_and_tiles_are_checked() {
    let row = GridRow::new(vec![solid(2, 2, [0; 3]), solid(2, 2, [0; 3])]);
    let mut grid = ImageGrid::new(vec![row], GridStyle::default());
    grid.columns = Some(1);
    assert!(grid.paint().is_err(), "a row longer than the columns");
    grid.columns = Some(0);
    assert!(grid.size().is_err());
    grid.columns = Some(3);
    assert_eq!(grid.size().unwrap(), (6, 2), "an empty third column");
    grid.col_labels = vec!["a".into()];
    assert!(grid.size().is_err(), "one label for three columns");
    grid.col_labels.clear();
    grid.rows[0].tiles[0].rgb.pop();
    assert!(grid.paint().is_err(), "a tile short of bytes");
    let empty = ImageGrid::new(Vec::new(), GridStyle::default());
    assert_eq!(empty.paint().unwrap().dimensions(), (1, 1));
    let bad = GridStyle {
        zoom: 0,
        ..GridStyle::default()
    };
    assert!(ImageGrid::new(Vec::new(), bad).size().is_err());
}
