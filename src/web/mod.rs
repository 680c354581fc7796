//! The web page on 127.0.0.1:8089: the control API, the live stream and the embedded page.
