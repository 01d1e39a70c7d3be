//! Which gradients a backward pass must compute: the scope that lets the custom ops skip the
//! gradients nobody asked for (the weights' while a penalty differentiates with respect to D's
//! input, the data's, a frozen net's).

use candle_core::backprop::GradStore;
use candle_core::{Tensor as CT, TensorId};
use std::cell::RefCell;

thread_local! {
    /// The leaf variables the running [`backward_for`] returns gradients for (None: all of
    /// them, as in an optimizer's backward pass).
    static WANTED: RefCell<Option<Vec<TensorId>>> = const { RefCell::new(None) };
}

/// Whether a custom op's backward pass has to compute the gradient of its input `t`: not for a
/// constant (a tensor no variable flows into, such as data or a frozen net's weights), nor for
/// a leaf variable that the running [`backward_for`] does not return (a net's weights while a
/// penalty takes the gradient with respect to D's input). Any other input must get one.
pub fn needs_grad(t: &CT) -> bool {
    if !t.track_op() {
        return false;
    }
    !t.is_variable() || WANTED.with(|w| w.borrow().as_ref().is_none_or(|ids| ids.contains(&t.id())))
}

/// Restores the previous [`WANTED`] set when a backward pass ends (or fails).
struct Wanted(Option<Vec<TensorId>>);

impl Drop for Wanted {
    fn drop(&mut self) {
        WANTED.with(|w| *w.borrow_mut() = self.0.take());
    }
}

/// `y.backward()` for the gradients of the leaf variables `wanted` only: the custom ops skip
/// the gradients of other leaves (see [`needs_grad`]); candle's own ops still compute theirs.
pub fn backward_for(y: &CT, wanted: &[&CT]) -> candle_core::Result<GradStore> {
    let ids = wanted.iter().map(|x| x.id()).collect();
    let _restore = Wanted(WANTED.with(|w| w.replace(Some(ids))));
    y.backward()
}
