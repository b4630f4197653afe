//! [`Routing`]: where the relay sends one recipient's mail, read and
//! switched per recipient.
//!
//! Contract of an implementation: [`Routing::set`] changes the route of
//! one recipient only, atomically (the relay sees the old table or the
//! new one, never a mix), and returns once the relay's own lookup answers
//! the new route; [`Routing::release`] makes the relay try the held mail
//! again at once, so that it follows the recipient's route as it is now.
//! Setting a route a recipient already has changes nothing and succeeds,
//! so that a step resumed after a crash can set it again.

use crate::{PlatformError, Route};

/// The relay's routes, per recipient.
pub trait Routing: Send + Sync + std::fmt::Debug {
    /// The route of `address` as the relay looks it up now.
    fn route(&self, address: &str) -> Result<Route, PlatformError>;

    /// Routes `address` to `route`, confirmed by the relay's lookup.
    fn set(&self, address: &str, route: Route) -> Result<(), PlatformError>;

    /// Delivers again what the relay holds, each message by its
    /// recipient's route as it is now.
    fn release(&self) -> Result<(), PlatformError>;
}
