//! A table of one-line rows in columns whose widths are known before it is drawn.
//!
//! The VM list fits its columns to the pane itself (which to drop, how wide NAME
//! is), so placing them is addition. ratatui's `Table` hands the same widths to a
//! constraint solver, which was a third of the time of the dashboard's first frame
//! (`bioxen attach` to a server of 100 VMs), with nothing left for it to decide.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::Widget;

/// Rows of cells, one [`Line`] per column, a space between columns. A cell wider
/// than its column is cut at its right edge, and columns past the area's right edge
/// are not drawn.
pub struct Table<'a> {
    pub widths: Vec<u16>,
    pub header: Vec<Line<'a>>,
    pub header_style: Style,
    pub rows: Vec<Vec<Line<'a>>>,
    /// The row (counted from the first of `rows`) drawn in `highlight`.
    pub selected: Option<usize>,
    pub highlight: Style,
}

impl Widget for Table<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let header = std::iter::once((self.header, self.header_style));
        let rows = self.rows.into_iter().map(|cells| (cells, Style::new()));
        let lines = (area.top()..area.bottom()).zip(header.chain(rows));
        let mut selected = None;
        for (n, (y, (cells, style))) in lines.enumerate() {
            let row = Rect::new(area.x, y, area.width, 1);
            buf.set_style(row, style);
            render_cells(cells, &self.widths, row, buf);
            // Row 0 is the header.
            if self.selected.is_some_and(|s| s + 1 == n) {
                selected = Some(row);
            }
        }
        if let Some(row) = selected {
            buf.set_style(row, self.highlight);
        }
    }
}

fn render_cells(cells: Vec<Line>, widths: &[u16], row: Rect, buf: &mut Buffer) {
    let mut x = row.x;
    for (cell, &width) in cells.into_iter().zip(widths) {
        if x >= row.right() {
            break;
        }
        let width = width.min(row.right() - x);
        cell.render(Rect::new(x, row.y, width, 1), buf);
        x = x.saturating_add(width).saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::{Color, Modifier};

    fn text(buf: &Buffer) -> Vec<String> {
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect()
    }

    #[test]
    fn columns_sit_at_their_widths_one_space_apart_and_cut_at_the_edge() {
        let table = Table {
            widths: vec![4, 3, 5],
            header: vec!["NAME".into(), "PID".into(), "STATE".into()],
            header_style: Style::new().add_modifier(Modifier::BOLD),
            rows: vec![
                vec!["lua-1".into(), "12".into(), "idle".into()],
                vec!["b".into(), "7".into(), "running".into()],
            ],
            selected: Some(1),
            highlight: Style::new().bg(Color::Blue),
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 12, 4));
        table.render(buf.area, &mut buf);
        assert_eq!(
            text(&buf),
            [
                "NAME PID STA",
                "lua- 12  idl",
                "b    7   run",
                "            "
            ]
        );
        assert!(buf[(0, 0)].modifier.contains(Modifier::BOLD));
        // The selected row is highlighted across the whole width, the other is not.
        assert!((0..12).all(|x| buf[(x, 2)].bg == Color::Blue));
        assert!((0..12).all(|x| buf[(x, 1)].bg != Color::Blue));
    }

    #[test]
    fn rows_past_the_bottom_are_not_drawn() {
        let table = Table {
            widths: vec![3],
            header: vec!["H".into()],
            header_style: Style::new(),
            rows: (0..5).map(|i| vec![Line::from(i.to_string())]).collect(),
            selected: Some(4),
            highlight: Style::new().bg(Color::Blue),
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 3));
        table.render(buf.area, &mut buf);
        assert_eq!(text(&buf), ["H  ", "0  ", "1  "]);
        assert!((0..3).all(|y| buf[(0, y)].bg != Color::Blue));
    }
}
