//! The vocabulary of the papers, layer 3: GAN objectives and energies (`objectives`), gradient
//! penalties and instance noise (`penalties`), schedules (`schedules`) and MAGAN's margin
//! adaptation (`magan`). Pure math on script tensors, each file with its thin registration.

pub mod magan;
pub mod objectives;
pub mod penalties;
pub mod schedules;

/// Registers the losses, energies, penalties, schedules and the margin adapter.
pub fn register(engine: &mut rhai::Engine) {
    objectives::register(engine);
    penalties::register(engine);
    schedules::register(engine);
    magan::register(engine);
}
