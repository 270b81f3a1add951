//! Conversion tests: the docs' Gateway API tabs against their classic
//! tabs, and the conversion's own rules.

mod docs;
mod rules;
