//! Where each part of the dashboard goes. Drawing, mouse hit-testing and the PTY size
//! all use this one computation, so they always agree.

use ratatui::layout::Rect;

use bioxen_proto::Size;

/// The list is hidden below this terminal width (the terminal pane gets everything).
const MIN_WIDTH_FOR_LIST: u16 = 70;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub tabs: Rect,
    /// The VM list, with its border; `None` when zoomed or too narrow.
    pub list: Option<Rect>,
    /// The terminal pane's frame (border and title).
    pub frame: Rect,
    /// Inside the frame: the cells a session's screen occupies.
    pub pane: Rect,
    pub status: Rect,
}

impl Areas {
    pub fn new(area: Rect, zoom: bool) -> Areas {
        let tabs = Rect::new(area.x, area.y, area.width, area.height.min(1));
        let status_y = area.y + area.height.saturating_sub(1);
        let status = Rect::new(area.x, status_y, area.width, u16::from(area.height >= 2));
        let body_y = area.y + tabs.height;
        let body_h = area.height.saturating_sub(tabs.height + status.height);
        let body = Rect::new(area.x, body_y, area.width, body_h);
        let (list, frame) = if zoom || area.width < MIN_WIDTH_FOR_LIST {
            (None, body)
        } else {
            let w = (body.width * 9 / 20).clamp(36, 60);
            (
                Some(Rect::new(body.x, body.y, w, body.height)),
                Rect::new(body.x + w, body.y, body.width - w, body.height),
            )
        };
        let pane = if frame.width >= 3 && frame.height >= 3 {
            Rect::new(frame.x + 1, frame.y + 1, frame.width - 2, frame.height - 2)
        } else {
            Rect::new(frame.x, frame.y, frame.width, frame.height)
        };
        Areas {
            tabs,
            list,
            frame,
            pane,
            status,
        }
    }

    /// The list over the whole body, and no pane: for a terminal too narrow for both.
    pub fn list_only(self) -> Areas {
        let body = self.frame;
        let none = Rect::new(body.x, body.y, 0, 0);
        Areas {
            list: Some(body),
            frame: none,
            pane: none,
            ..self
        }
    }

    /// A grid tab's areas: no list, and the grid (the pane) fills the body without a
    /// frame; its tiles draw their own headers.
    pub fn grid(area: Rect) -> Areas {
        let a = Areas::new(area, true);
        Areas {
            frame: a.frame,
            pane: a.frame,
            ..a
        }
    }

    /// The size sessions get: the pane, but never less than [`MIN_PANE`].
    ///
    /// A VM's output is laid out at its terminal's width and scrolls at its height;
    /// nothing reflows it afterwards. A window dragged down to a few cells for a moment,
    /// or a burst of resizes passing through one, must not leave a VM printing into a
    /// 1x2 screen where a whole answer scrolls away before the window grows back. Below
    /// the minimum the pane shows the part of the screen around the cursor.
    pub fn pane_size(&self) -> Size {
        Size::new(
            self.pane.height.max(MIN_PANE.rows),
            self.pane.width.max(MIN_PANE.cols),
        )
    }
}

/// The smallest terminal a session is given, whatever the window: room for a prompt
/// and an answer.
pub const MIN_PANE: Size = Size { rows: 6, cols: 24 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_120x40() {
        let a = Areas::new(Rect::new(0, 0, 120, 40), false);
        assert_eq!(a.list.unwrap().width, 54);
        assert_eq!(a.pane, Rect::new(55, 2, 64, 36));
        let z = Areas::new(Rect::new(0, 0, 120, 40), true);
        assert!(z.list.is_none());
        assert_eq!(z.pane_size(), Size::new(36, 118));
    }

    #[test]
    fn tiny_terminals_never_underflow() {
        for (w, h) in [(0, 0), (1, 1), (2, 2), (3, 3), (80, 1), (1, 80)] {
            let a = Areas::new(Rect::new(0, 0, w, h), false);
            assert_eq!(a.pane_size().rows, MIN_PANE.rows.max(a.pane.height));
            assert_eq!(a.pane_size().cols, MIN_PANE.cols.max(a.pane.width));
        }
    }
}
