//! Grids: tabs that show several VMs at once, each in a tile at its own size.
//!
//! Where the tiles go is one pure function, [`Grid::tiles`], which drawing, mouse
//! hits and the sizes sent to the VMs all use, so a VM's terminal is always exactly
//! the tile it is drawn in.
//!
//! A tile is never smaller than [`MIN_TILE`] (a session's smallest size plus its
//! header): a grid with more VMs than fit is shown a page at a time, the page that
//! holds the focused tile. Moving the focus past a page's last tile turns the page.

use std::collections::HashSet;

use ratatui::layout::Rect;

use super::layout::MIN_PANE;
use bioxen_proto::{Size, VmId};

/// The smallest tile: room for the smallest session (24x6), a header row, and a
/// separator column.
pub const MIN_TILE: Size = Size {
    rows: MIN_PANE.rows + 1,
    cols: MIN_PANE.cols + 1,
};

/// How the tiles of a page share the grid, as tmux's layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Rows and columns, as square as the count allows.
    #[default]
    Tiled,
    /// Side by side.
    EvenHorizontal,
    /// One above the other.
    EvenVertical,
    /// The page's first VM large on the left, the others stacked on the right.
    MainStack,
}

impl Layout {
    pub fn next(self) -> Layout {
        match self {
            Layout::Tiled => Layout::EvenHorizontal,
            Layout::EvenHorizontal => Layout::EvenVertical,
            Layout::EvenVertical => Layout::MainStack,
            Layout::MainStack => Layout::Tiled,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Layout::Tiled => "tiled",
            Layout::EvenHorizontal => "even-horizontal",
            Layout::EvenVertical => "even-vertical",
            Layout::MainStack => "main+stack",
        }
    }
}

/// A tile on screen: which VM of the grid, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Index into [`Grid::vms`].
    pub index: usize,
    /// The header row: name, state, marks.
    pub header: Rect,
    /// The VM's screen.
    pub body: Rect,
    /// A separator column on the tile's right, if another tile is there.
    pub separator: Option<Rect>,
}

impl Tile {
    /// The whole tile, for mouse hits.
    pub fn area(&self) -> Rect {
        let mut r = self.header.union(self.body);
        if let Some(s) = self.separator {
            r = r.union(s);
        }
        r
    }

    /// The size the tile's VM gets: the body, never below a session's smallest size.
    pub fn size(&self) -> Size {
        Size::new(
            self.body.height.max(MIN_PANE.rows),
            self.body.width.max(MIN_PANE.cols),
        )
    }
}

/// A grid tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    /// The VMs, in tile order.
    pub vms: Vec<VmId>,
    pub layout: Layout,
    /// Index into `vms` of the tile keys go to.
    pub focus: usize,
    /// The focused tile fills the grid.
    pub zoomed: bool,
    /// Typing goes to every tile but the excluded ones.
    pub broadcast: bool,
    pub excluded: HashSet<VmId>,
}

impl Grid {
    pub fn new(vms: Vec<VmId>) -> Grid {
        Grid {
            vms,
            layout: Layout::default(),
            focus: 0,
            zoomed: false,
            broadcast: false,
            excluded: HashSet::new(),
        }
    }

    pub fn focused(&self) -> Option<VmId> {
        self.vms.get(self.focus).copied()
    }

    /// How many tiles fit on one page of `area` in this layout.
    pub fn per_page(&self, area: Rect) -> usize {
        let cols = usize::from(area.width / MIN_TILE.cols).max(1);
        let rows = usize::from(area.height / MIN_TILE.rows).max(1);
        match self.layout {
            Layout::Tiled => cols * rows,
            Layout::EvenHorizontal => cols,
            Layout::EvenVertical => rows,
            Layout::MainStack if cols >= 2 => 1 + rows,
            Layout::MainStack => rows,
        }
    }

    /// The page showing the focused tile, and how many pages there are.
    pub fn page(&self, area: Rect) -> (usize, usize) {
        let per = self.per_page(area);
        (self.focus / per, self.vms.len().div_ceil(per).max(1))
    }

    /// The tiles shown in `area`: the focused one alone when zoomed, else the page
    /// holding the focused tile, laid out by the grid's layout.
    pub fn tiles(&self, area: Rect) -> Vec<Tile> {
        if self.vms.is_empty() || area.width == 0 || area.height == 0 {
            return Vec::new();
        }
        if self.zoomed {
            return vec![tile(self.focus, area, area)];
        }
        let per = self.per_page(area);
        let first = self.focus / per * per;
        let shown: Vec<usize> = (first..self.vms.len().min(first + per)).collect();
        let rects = match self.layout {
            Layout::Tiled => tiled(shown.len(), area),
            Layout::EvenHorizontal => split(area, shown.len(), true),
            Layout::EvenVertical => split(area, shown.len(), false),
            Layout::MainStack => main_stack(shown.len(), area, self.per_page(area) > 1),
        };
        shown
            .into_iter()
            .zip(rects)
            .map(|(index, rect)| tile(index, rect, area))
            .collect()
    }

    /// The tile a step in a direction leads to, for the arrow keys: the nearest tile
    /// whose centre lies that way; past the edge of a page, the next or previous page.
    pub fn step(&self, area: Rect, dx: i32, dy: i32) -> usize {
        let tiles = self.tiles(area);
        let Some(from) = tiles.iter().find(|t| t.index == self.focus) else {
            return self.focus;
        };
        let centre = |r: Rect| {
            (
                i32::from(r.x) * 2 + i32::from(r.width),
                i32::from(r.y) * 2 + i32::from(r.height),
            )
        };
        let (fx, fy) = centre(from.area());
        let best = tiles
            .iter()
            .filter(|t| t.index != self.focus)
            .filter_map(|t| {
                let (x, y) = centre(t.area());
                let (ax, ay) = (x - fx, y - fy);
                let along = ax * dx + ay * dy;
                // Straight ahead is nearer than the same distance off to the side.
                (along > 0).then(|| (along + 2 * (ax * dy - ay * dx).abs(), t.index))
            })
            .min_by_key(|(cost, _)| *cost)
            .map(|(_, index)| index);
        match best {
            Some(i) => i,
            // Off the page: forwards (right, down) turns to the next page, backwards
            // to the previous one.
            None if dx + dy > 0 => {
                let last = tiles.last().map_or(self.focus, |t| t.index);
                if last + 1 < self.vms.len() {
                    last + 1
                } else {
                    self.focus
                }
            }
            None => {
                let first = tiles.first().map_or(self.focus, |t| t.index);
                first.checked_sub(1).unwrap_or(self.focus)
            }
        }
    }
}

fn tile(index: usize, rect: Rect, grid: Rect) -> Tile {
    let separated = rect.right() < grid.right() && rect.width > 1;
    let width = rect.width - u16::from(separated);
    let header = Rect::new(rect.x, rect.y, width, rect.height.min(1));
    let body = Rect::new(
        rect.x,
        rect.y + header.height,
        width,
        rect.height - header.height,
    );
    let separator = separated.then(|| Rect::new(rect.x + width, rect.y, 1, rect.height));
    Tile {
        index,
        header,
        body,
        separator,
    }
}

/// `n` equal parts of `area`, side by side or stacked; the remainder goes to the
/// first parts, one cell each.
fn split(area: Rect, n: usize, side_by_side: bool) -> Vec<Rect> {
    let n16 = n.max(1) as u16;
    let total = if side_by_side {
        area.width
    } else {
        area.height
    };
    let (base, extra) = (total / n16, total % n16);
    let mut at = 0;
    (0..n16)
        .map(|i| {
            let len = base + u16::from(i < extra);
            let r = if side_by_side {
                Rect::new(area.x + at, area.y, len, area.height)
            } else {
                Rect::new(area.x, area.y + at, area.width, len)
            };
            at += len;
            r
        })
        .collect()
}

/// Rows of equal height; each row split evenly among its tiles, so a short last row
/// has wider tiles rather than a hole.
fn tiled(n: usize, area: Rect) -> Vec<Rect> {
    let max_cols = usize::from(area.width / MIN_TILE.cols).max(1);
    let max_rows = usize::from(area.height / MIN_TILE.rows).max(1);
    let square = (n as f64).sqrt().ceil() as usize;
    let cols = (square.min(max_cols)..=max_cols)
        .find(|c| n.div_ceil(*c) <= max_rows)
        .unwrap_or(max_cols)
        .max(1);
    let rows = n.div_ceil(cols);
    split(area, rows, false)
        .into_iter()
        .enumerate()
        .flat_map(|(r, row)| split(row, (n - r * cols).min(cols), true))
        .collect()
}

/// The first tile on the left half, the rest stacked on the right.
fn main_stack(n: usize, area: Rect, room_for_stack: bool) -> Vec<Rect> {
    if n <= 1 || !room_for_stack {
        return split(area, n, false);
    }
    let halves = split(area, 2, true);
    let mut rects = vec![halves[0]];
    rects.extend(split(halves[1], n - 1, false));
    rects
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize, layout: Layout) -> Grid {
        let mut g = Grid::new((0..n).map(|i| bioxen_proto::VmId(i as u64)).collect());
        g.layout = layout;
        g
    }

    /// Tiles never overlap, stay inside the grid, and are never below the smallest
    /// size when the grid itself is not.
    fn check(g: &Grid, area: Rect) {
        let tiles = g.tiles(area);
        for (i, a) in tiles.iter().enumerate() {
            assert!(
                area.contains(a.area().as_position()),
                "{a:?} outside {area:?}"
            );
            assert!(a.area().right() <= area.right() && a.area().bottom() <= area.bottom());
            if area.width >= MIN_TILE.cols && area.height >= MIN_TILE.rows {
                assert!(
                    a.body.width >= MIN_PANE.cols && a.body.height >= MIN_PANE.rows,
                    "{:?} {area:?}: {a:?}",
                    g.layout
                );
            }
            for b in &tiles[i + 1..] {
                assert!(!a.area().intersects(b.area()), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn sixteen_tiles_fit_200x60_on_one_page_in_4x4() {
        let area = Rect::new(0, 1, 200, 58);
        let g = grid(16, Layout::Tiled);
        let tiles = g.tiles(area);
        assert_eq!(tiles.len(), 16);
        assert_eq!(g.page(area), (0, 1));
        let widths: HashSet<u16> = tiles.iter().map(|t| t.area().width).collect();
        assert!(widths.iter().all(|w| (49..=51).contains(w)), "{widths:?}");
        assert_eq!(tiles.iter().filter(|t| t.area().y == 1).count(), 4);
        check(&g, area);
    }

    #[test]
    fn at_80x24_a_grid_pages_instead_of_shrinking_tiles() {
        let area = Rect::new(0, 1, 80, 22);
        let mut g = grid(16, Layout::Tiled);
        assert_eq!(g.per_page(area), 9, "3x3 tiles of at least 25x7");
        assert_eq!(g.page(area), (0, 2));
        assert_eq!(g.tiles(area).len(), 9);
        g.focus = 13;
        assert_eq!(g.page(area), (1, 2));
        let shown: Vec<usize> = g.tiles(area).iter().map(|t| t.index).collect();
        assert_eq!(shown, (9..16).collect::<Vec<_>>());
        check(&g, area);
    }

    #[test]
    fn every_layout_holds_for_every_count_and_size() {
        for layout in [
            Layout::Tiled,
            Layout::EvenHorizontal,
            Layout::EvenVertical,
            Layout::MainStack,
        ] {
            for n in 1..=17 {
                for (w, h) in [(80, 22), (200, 58), (120, 38), (30, 8), (10, 3)] {
                    let mut g = grid(n, layout);
                    for focus in 0..n {
                        g.focus = focus;
                        let area = Rect::new(0, 1, w, h);
                        check(&g, area);
                        let tiles = g.tiles(area);
                        assert!(tiles.iter().any(|t| t.index == focus), "focus shown");
                    }
                }
            }
        }
    }

    #[test]
    fn arrows_move_between_neighbours_and_turn_pages() {
        let area = Rect::new(0, 1, 200, 58);
        let mut g = grid(4, Layout::Tiled);
        // 0 1
        // 2 3
        assert_eq!(g.step(area, 1, 0), 1);
        assert_eq!(g.step(area, 0, 1), 2);
        assert_eq!(g.step(area, -1, 0), 0, "nothing to the left: stays");
        g.focus = 3;
        assert_eq!(g.step(area, 0, -1), 1);
        assert_eq!(g.step(area, -1, 0), 2);

        let small = Rect::new(0, 1, 80, 22);
        let mut g = grid(12, Layout::Tiled);
        g.focus = 8;
        assert_eq!(g.step(small, 1, 0), 9, "past the page's end: the next page");
        g.focus = 9;
        assert_eq!(g.step(small, -1, 0), 8, "before the page's start: back");
        g.focus = 11;
        assert_eq!(
            g.step(small, 0, 1),
            11,
            "the last tile of the last page stays"
        );
    }

    #[test]
    fn zoom_gives_the_focused_tile_everything() {
        let area = Rect::new(0, 1, 120, 38);
        let mut g = grid(5, Layout::Tiled);
        g.focus = 3;
        g.zoomed = true;
        let tiles = g.tiles(area);
        assert_eq!(tiles.len(), 1);
        assert_eq!(tiles[0].index, 3);
        assert_eq!(tiles[0].size(), Size::new(37, 120));
    }

    #[test]
    fn main_stack_puts_the_first_tile_on_the_left_half() {
        let area = Rect::new(0, 1, 120, 38);
        let g = grid(4, Layout::MainStack);
        let t = g.tiles(area);
        assert_eq!(t[0].area(), Rect::new(0, 1, 60, 38));
        assert!(t[1..].iter().all(|t| t.area().x == 60));
    }
}
