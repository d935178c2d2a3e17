//! Test-only probe of the secret holders' wipes: each `Drop` runs a `wipe` that zeroizes the
//! secret and, in test builds, notes its type here, so a unit test can check both that `wipe`
//! clears the secret and that dropping the value runs `wipe` (without `unsafe` reads of freed
//! memory).

thread_local! {
    /// Names of the types whose `wipe` ran on this thread (see [`note_wipe`]).
    static WIPED: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Called by every secret holder's `wipe`.
pub(crate) fn note_wipe(name: &'static str) {
    WIPED.with(|w| w.borrow_mut().push(name));
}

/// How many times `wipe` of the type `name` ran on this thread so far.
pub(crate) fn wipes(name: &str) -> usize {
    WIPED.with(|w| w.borrow().iter().filter(|n| **n == name).count())
}
