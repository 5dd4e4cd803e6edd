//! `explain` and `who` on the seed models read as a person would expect.
