//! How long the production-sized data set takes to seed and how much memory the sandbox
//! holds with it: `cargo run --release -p blocks-sandbox --example large_seed`.

use std::time::Instant;

use blocks_sandbox::{LargeData, Sandbox, SandboxOptions, SandboxSize};

/// A line of `/proc/self/status` (`VmRSS`, `VmHWM`), where the system has one.
fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .map(|line| line.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let before = status("VmRSS:");
    let started = Instant::now();
    let sandbox = Sandbox::start(SandboxOptions {
        size: SandboxSize::Large(LargeData::PRODUCTION),
        ..SandboxOptions::default()
    })
    .await?;
    let elapsed = started.elapsed();
    println!("seeded {:?} in {elapsed:.2?}", LargeData::PRODUCTION);
    println!(
        "resident memory: {before} before, {} after (peak {})",
        status("VmRSS:"),
        status("VmHWM:")
    );
    println!("CRM at {}", sandbox.crm.base_url);
    Ok(())
}
