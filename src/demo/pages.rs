//! The demo application's HTML pages, embedded in the binary. They use relative URLs only, so
//! they work behind the recording proxy as they do directly.

pub(super) const LOGIN: &str = include_str!("../../assets/demo/login.html");
pub(super) const TEACHER: &str = include_str!("../../assets/demo/teacher.html");
pub(super) const STUDENT: &str = include_str!("../../assets/demo/student.html");
