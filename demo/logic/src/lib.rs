//! Edit me while the demo runs: change a string, a number, a formula, and save.

use std::sync::atomic::{AtomicU64, Ordering};

/// Greetings so far: the program's own count, which reloaded code keeps counting.
static GREETINGS: AtomicU64 = AtomicU64::new(0);

/// The world the demo keeps across reloads.
pub struct World {
    /// Ticks since the start.
    pub ticks: u64,
    /// A score that only ever grows.
    pub score: u64,
}

impl World {
    /// One step of the simulation.
    pub fn step(&mut self) {
        self.ticks += 1;
        self.score += points(self.ticks);
    }

    /// What the demo prints each tick.
    pub fn describe(&self) -> String {
        format!("score {:>5} | {}", self.score, greeting("world"))
    }
}

/// Points for a tick. Try `ticks * 10`.
pub fn points(ticks: u64) -> u64 {
    ticks % 3
}

/// Try another greeting.
pub fn greeting(name: &str) -> String {
    let n = GREETINGS.fetch_add(1, Ordering::Relaxed) + 1;
    format!("Hello, {name}! ({n} {})", if n == 1 { "greeting" } else { "greetings" })
}
