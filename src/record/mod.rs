//! The recording proxy: reverse mode (the 2013 style) and forward mode with CONNECT and
//! optional HTTPS interception. Everything is forwarded; what matches the filters is captured
//! into a HAR file.
