//! HAR -> scenario: filtering, login detection, correlation, think times, loops and pacing.
//! A pipeline of passes over data; no IO.
