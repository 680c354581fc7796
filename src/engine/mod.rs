//! The load engine: virtual users, spawning and stopping them to a plan, the HTTP session of
//! one user, executing steps. Measurements go to `stats`; nothing here prints.
