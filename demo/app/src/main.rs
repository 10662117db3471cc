//! The demo: a world that ticks twice a second. Its state lives here, in `main`; its
//! behaviour lives in `logic` and in `render` below, which `cargo hotreload run`
//! reloads when you save.

use std::time::Duration;

fn main() {
    let mut world = logic::World { ticks: 0, score: 0 };
    let period = std::env::args().nth(1).and_then(|ms| ms.parse().ok()).unwrap_or(500);
    loop {
        world.step();
        println!("{}", render(&world));
        std::thread::sleep(Duration::from_millis(period));
    }
}

/// One line of the demo. Try `| ticks {:>3}`.
fn render(world: &logic::World) -> String {
    format!("tick {:>3} | {}", world.ticks, world.describe())
}
