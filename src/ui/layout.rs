//! Where each part of the dashboard goes. Drawing, mouse hit-testing and the PTY size
//! all use this one computation, so they always agree.

use ratatui::layout::Rect;

use crate::vm::Size;

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

    /// The size sessions get: the pane, at least one cell.
    pub fn pane_size(&self) -> Size {
        Size::new(self.pane.height, self.pane.width)
    }
}

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
            assert!(a.pane_size().rows >= 1 && a.pane_size().cols >= 1);
        }
    }
}
