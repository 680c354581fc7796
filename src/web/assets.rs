//! The page's files, embedded at build time: the page works with no network and no CDN.

pub(super) const INDEX_HTML: &str = include_str!("../../assets/web/index.html");
pub(super) const APP_JS: &str = include_str!("../../assets/web/app.js");
pub(super) const SYSTEM_JS: &str = include_str!("../../assets/web/system.js");
pub(super) const STYLE_CSS: &str = include_str!("../../assets/web/style.css");
