//! [`Route`]: where the relay sends one recipient's mail.

use std::fmt;
use std::str::FromStr;

/// Where mail for one recipient goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// To the legacy platform (the default of every address).
    Legacy,
    /// To the new platform.
    New,
    /// Kept in the relay's queue, deferred, never bounced, until the route
    /// changes and the queue is flushed.
    Held,
}

/// A route name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown route '{0}' (legacy, new or held)")]
pub struct UnknownRoute(pub String);

impl Route {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Legacy => "legacy",
            Route::New => "new",
            Route::Held => "held",
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Route {
    type Err = UnknownRoute;

    fn from_str(s: &str) -> Result<Route, UnknownRoute> {
        [Route::Legacy, Route::New, Route::Held]
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| UnknownRoute(s.to_owned()))
    }
}
