//! The `blocks-gateway` command: serve (default), print the schema.

use std::{path::PathBuf, process::ExitCode};

use blocks_gateway::{
    config::Settings,
    gateway::Gateway,
    sandbox::{Sandbox, SandboxOptions},
    schema,
    shutdown::{self, Drained},
    telemetry::{self, LogFormat, TelemetrySettings},
};
use clap::{Parser, Subcommand};

/// How long start-up waits for the Redis invalidation channel (`REDIS_URL`).
const REDIS_STARTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One GraphQL endpoint over the Sales, Search, Assets, B2B and CRM blocks.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML file with settings (the environment overrides it).
    #[arg(long, global = true, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway (the default). With no block configured, serves the sandbox.
    Serve,
    /// Print the GraphQL schema (SDL); `schema.graphql` is this output.
    Schema,
    /// Read an API key from standard input and print its SHA-256 digest, the form
    /// GATEWAY_API_KEY_HASHES lists keys in. The key itself is never printed.
    HashKey,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", schema::sdl());
            ExitCode::SUCCESS
        }
        Command::HashKey => hash_key_from_stdin(),
        Command::Serve => {
            let telemetry_settings = match TelemetrySettings::from_env() {
                Ok(settings) => settings,
                Err(error) => return exit_code(Err(error.into())),
            };
            let telemetry = match telemetry::init(&telemetry_settings) {
                Ok(telemetry) => telemetry,
                Err(error) => return exit_code(Err(error.into())),
            };
            let served = serve(cli.config, telemetry_settings.format).await;
            telemetry.shutdown();
            exit_code(served)
        }
    }
}

/// `hash-key`: the key is the first line of standard input, without surrounding blanks
/// (as the gateway reads it from `Authorization: Bearer <key>`).
fn hash_key_from_stdin() -> ExitCode {
    let mut line = String::new();
    if let Err(error) = std::io::stdin().read_line(&mut line) {
        eprintln!("blocks-gateway: hash-key: cannot read standard input: {error}");
        return ExitCode::FAILURE;
    }
    let key = line.trim();
    if key.is_empty() {
        eprintln!("blocks-gateway: hash-key: no key on standard input");
        return ExitCode::FAILURE;
    }
    println!("{}", blocks_gateway::callers::hash_key(key));
    ExitCode::SUCCESS
}

fn exit_code(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("blocks-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, then drains (see `shutdown`). The ready line goes to
/// stdout with text logs only: JSON logs keep stdout one JSON object per line.
async fn serve(config: Option<PathBuf>, log_format: LogFormat) -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = Settings::load(config.as_deref())?;
    // Kept alive for as long as the gateway serves.
    let _sandbox = if settings.sandbox {
        let sandbox = Sandbox::start(SandboxOptions::default()).await?;
        settings.use_sandbox(&sandbox)?;
        Some(sandbox)
    } else {
        None
    };
    let gateway = Gateway::new(&settings, settings.cache.clone())?;
    if let Some(tier) = gateway.cache().shared_tier() {
        tier.wait_until_subscribed(REDIS_STARTUP_TIMEOUT).await?;
        tracing::info!("shared cache tier on: Redis second level and invalidation channel");
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|error| format!("cannot listen on {} (GATEWAY_LISTEN): {error}", settings.listen))?;
    let address = listener.local_addr()?;
    let blocks: Vec<&str> = settings.blocks.iter().map(|b| b.block.label()).collect();
    tracing::info!(%address, ?blocks, sandbox = settings.sandbox, "blocks-gateway serving");
    if settings.sandbox {
        tracing::warn!("sandbox mode: emulated blocks with demo data");
    }
    blocks_gateway::callers::log_mode(&settings.callers);
    if log_format == LogFormat::Text {
        let mode = blocks_gateway::callers::banner_note(settings.sandbox, settings.callers.mode);
        println!("blocks-gateway{mode} ready: playground http://{address}/  endpoint http://{address}/graphql");
    }
    let drained = shutdown::serve_until_stopped(listener, gateway, shutdown::stop_signal(), settings.shutdown).await?;
    if let Drained::TimedOut { in_flight } = drained {
        tracing::warn!(in_flight, "stopped with operations still in flight");
    }
    Ok(())
}
