//! The monitors of `mdp check` (built by the checks work).
