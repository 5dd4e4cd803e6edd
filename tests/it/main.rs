//! The one integration-test binary; each area of Purview is a module.

mod syntax;
