//! The demo: a world that ticks twice a second. Its state lives here, in `main`; its
//! behaviour lives in `logic`, which `cargo hotreload run` reloads when you save.

use std::time::Duration;

fn main() {
    hotreload::init();
    hotreload::on_reload(|event| {
        println!("[reloaded {} (generation {})]", event.crate_name, event.generation);
    });
    let mut world = logic::World { ticks: 0, score: 0 };
    let period = std::env::args().nth(1).and_then(|ms| ms.parse().ok()).unwrap_or(500);
    loop {
        world.step();
        println!("{}", world.describe());
        std::thread::sleep(Duration::from_millis(period));
    }
}
