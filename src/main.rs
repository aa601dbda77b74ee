//! The `blocks-gateway` command: serve (default), print the schema or the configuration
//! reference, maintain the identity link index (reindex, export, import). With the default
//! `sandbox` feature, a gateway with no block configured serves the emulated blocks of the
//! `blocks-sandbox` crate; this file is the only place the product reaches them.

/// glibc's malloc serializes on its arena locks under concurrent load; mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{path::PathBuf, process::ExitCode};

use blocks_gateway::{
    config::{self, Settings},
    gateway::Gateway,
    link_index::{
        ImportReport, LinkError, LinkIndex,
        reindex::{NoProgress, ProgressBars, ReindexOptions, ReindexReport, reindex},
    },
    schema,
    shutdown::{self, Drained},
    telemetry::{self, LogFormat, TelemetrySettings},
    trusted_documents,
};
use clap::{Parser, Subcommand};

/// What keeps the sandbox's blocks alive while the gateway uses them (nothing can exist in
/// a build without the sandbox).
#[cfg(feature = "sandbox")]
type RunningSandbox = blocks_sandbox::Sandbox;
#[cfg(not(feature = "sandbox"))]
type RunningSandbox = std::convert::Infallible;

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
    Schema {
        /// Print the federation subgraph SDL instead (entities, `@key`, the `@link` to
        /// Federation v2); `subgraph.graphql` is this output.
        #[arg(long)]
        federation: bool,
    },
    /// Print the configuration reference: every variable the gateway reads, what it means
    /// and its default (a Markdown table; the README's is this output).
    Variables,
    /// Read an API key from standard input and print its SHA-256 digest, the form
    /// GATEWAY_API_KEY_HASHES lists keys in. The key itself is never printed.
    HashKey,
    /// Print the trusted-documents manifest (JSON: SHA-256 of each document -> document) of
    /// the `.graphql` files in DIR, one operation with its fragments per file; each must
    /// validate against the schema. Serve it with GATEWAY_TRUSTED_DOCUMENTS.
    TrustedDocuments {
        /// Directory of `.graphql` documents, e.g. examples/operations.
        dir: PathBuf,
    },
    /// Rebuild the identity link index from the blocks: CRM persons with a `unique_id`,
    /// B2B users by email. Idempotent and resumable; conflicts are reported, never
    /// overwritten.
    Reindex {
        /// Start from the first pages even if an interrupted run left a resume point.
        #[arg(long)]
        restart: bool,
        /// Upstream requests in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Back up or restore the identity link index as JSON lines.
    Links {
        #[command(subcommand)]
        command: LinksCommand,
    },
}

#[derive(Subcommand)]
enum LinksCommand {
    /// Write the whole index as JSON lines to FILE (stdout when absent).
    Export {
        /// Where to write.
        file: Option<PathBuf>,
    },
    /// Read JSON lines (as `links export` writes them) from FILE (stdin when absent).
    Import {
        /// Where to read.
        file: Option<PathBuf>,
        /// Empty the index first (restore a backup exactly).
        #[arg(long)]
        replace: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema { federation } => {
            print!(
                "{}",
                if federation {
                    schema::subgraph_sdl()
                } else {
                    schema::sdl()
                }
            );
            ExitCode::SUCCESS
        }
        Command::Variables => {
            print!("{}", config::reference_table());
            ExitCode::SUCCESS
        }
        Command::TrustedDocuments { dir } => print_trusted_documents(&dir).await,
        Command::HashKey => hash_key_from_stdin(),
        Command::Reindex { restart, concurrency } => {
            let options = ReindexOptions {
                restart,
                concurrency,
                ..ReindexOptions::default()
            };
            exit_code(run_reindex(cli.config, options).await)
        }
        Command::Links { command } => exit_code(run_links(cli.config, command).await),
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

async fn print_trusted_documents(dir: &std::path::Path) -> ExitCode {
    let manifest = match trusted_documents::manifest_from_dir(dir).await {
        Ok(manifest) => manifest,
        Err(error) => {
            eprintln!("blocks-gateway: {error}");
            return ExitCode::FAILURE;
        }
    };
    match serde_json::to_string_pretty(&manifest) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("blocks-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The settings, pointed at a freshly started sandbox when no block is configured (the
/// sandbox must be kept alive for as long as it is used).
async fn load_settings(
    config: Option<PathBuf>,
) -> Result<(Settings, Option<RunningSandbox>), Box<dyn std::error::Error>> {
    let settings = Settings::load(config.as_deref())?;
    if !settings.sandbox {
        return Ok((settings, None));
    }
    let (settings, sandbox) = start_sandbox(config.as_deref(), settings.sandbox_size).await?;
    Ok((settings, Some(sandbox)))
}

/// Starts the emulated blocks with the data set of `size` and loads the settings again with
/// every block pointed at them.
#[cfg(feature = "sandbox")]
async fn start_sandbox(
    config: Option<&std::path::Path>,
    size: config::SandboxSize,
) -> Result<(Settings, RunningSandbox), Box<dyn std::error::Error>> {
    let size = match size {
        config::SandboxSize::Demo => blocks_sandbox::SandboxSize::Demo,
        config::SandboxSize::Large => blocks_sandbox::SandboxSize::Large(blocks_sandbox::LargeData::PRODUCTION),
    };
    let options = blocks_sandbox::SandboxOptions {
        size,
        ..blocks_sandbox::SandboxOptions::default()
    };
    let sandbox = blocks_sandbox::Sandbox::start(options).await?;
    let mut overrides = sandbox.environment();
    overrides.push(("GATEWAY_SANDBOX", "true".to_owned()));
    let settings = Settings::load_with(config, &overrides)?;
    Ok((settings, sandbox))
}

/// A build without the sandbox has nothing to serve when no block is configured.
#[cfg(not(feature = "sandbox"))]
async fn start_sandbox(
    _config: Option<&std::path::Path>,
    _size: config::SandboxSize,
) -> Result<(Settings, RunningSandbox), Box<dyn std::error::Error>> {
    Err(
        "no block is configured and this build has no sandbox (it was built without the `sandbox` feature): \
         set the URL and credentials of each block to serve (SALES_API_URL, SEARCH_API_URL, ASSETS_API_URL, \
         B2B_API_URL, CRM_API_URL; `blocks-gateway variables` lists them all)"
            .into(),
    )
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
    // The sandbox is kept alive for as long as the gateway serves.
    let (settings, _sandbox) = load_settings(config).await?;
    let gateway = Gateway::new(&settings.gateway)?;
    if let Some(tier) = gateway.cache().redis_tier() {
        tier.wait_until_subscribed(REDIS_STARTUP_TIMEOUT).await?;
        tracing::info!("shared cache tier on: Redis second level and invalidation channel");
    }
    // Creates the SQLite file (or the PostgreSQL tables) now, and fails fast when unusable.
    gateway.links().ready().await?;
    if settings.sandbox {
        // The sandbox's demo data is fresh on every start: index what it can prove.
        let report = reindex(
            gateway.clients(),
            gateway.links(),
            ReindexOptions::default(),
            &NoProgress,
        )
        .await?;
        tracing::info!(
            added = report.added.len(),
            kept = report.kept,
            "sandbox identity links indexed"
        );
    }
    let listen = settings.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| format!("cannot listen on {listen} (GATEWAY_LISTEN): {error}"))?;
    let address = listener.local_addr()?;
    let blocks: Vec<&str> = settings.gateway.blocks.iter().map(|b| b.block.label()).collect();
    tracing::info!(%address, ?blocks, sandbox = settings.sandbox, "blocks-gateway serving");
    if settings.sandbox {
        tracing::warn!(
            size = settings.sandbox_size.as_str(),
            "sandbox mode: emulated blocks with seeded data"
        );
    }
    if settings.server.cors_loopback {
        tracing::info!(
            "browsers may call from any origin on localhost or 127.0.0.1 (set GATEWAY_CORS_ORIGINS to choose)"
        );
    }
    blocks_gateway::callers::log_mode(&settings.gateway.callers);
    if log_format == LogFormat::Text {
        let mode = blocks_gateway::callers::banner_note(settings.sandbox, settings.gateway.callers.mode);
        println!("blocks-gateway{mode} ready: playground http://{address}/  endpoint http://{address}/graphql");
    }
    let drained = shutdown::serve_until_stopped(
        listener,
        gateway,
        &settings.server,
        shutdown::stop_signal(),
        settings.shutdown,
    )
    .await?;
    if let Drained::TimedOut { in_flight } = drained {
        tracing::warn!(in_flight, "stopped with operations still in flight");
    }
    Ok(())
}

async fn run_reindex(config: Option<PathBuf>, options: ReindexOptions) -> Result<(), Box<dyn std::error::Error>> {
    let (settings, _sandbox) = load_settings(config).await?;
    let gateway = Gateway::new(&settings.gateway)?;
    eprintln!("reindexing into {}", settings.gateway.link_index.describe());
    let report = reindex(gateway.clients(), gateway.links(), options, &ProgressBars::default()).await?;
    print_reindex_report(&report);
    Ok(())
}

fn print_reindex_report(report: &ReindexReport) {
    for link in &report.added {
        println!(
            "added     {} {} -> identity {}",
            link.block.as_str(),
            link.external_id,
            link.identity_id
        );
    }
    for conflict in &report.conflicts {
        println!("conflict  {conflict}");
    }
    for block in &report.skipped {
        println!("skipped   {} (not configured)", block.label());
    }
    println!(
        "reindex: {} added, {} kept, {} conflicting, {} identity emails recorded; lookups: {} Sales entity positions, {} B2B emails",
        report.added.len(),
        report.kept,
        report.conflicts.len(),
        report.emails_recorded,
        report.entity_positions,
        report.b2b_emails
    );
}

async fn run_links(config: Option<PathBuf>, command: LinksCommand) -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::load(config.as_deref())?;
    let index = LinkIndex::open_ready(&settings.gateway.link_index).await?;
    match command {
        LinksCommand::Export { file: Some(file) } => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&file)?);
            let lines = index.export(&mut out).await?;
            eprintln!("exported {lines} lines to {}", file.display());
        }
        LinksCommand::Export { file: None } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match index.export(&mut out).await {
                // The reader stopped early (`| head`): not a failure of the export.
                Err(LinkError::Io(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
                result => {
                    result?;
                }
            }
        }
        LinksCommand::Import { file, replace } => {
            let report = match file {
                Some(file) => {
                    let input = std::io::BufReader::new(std::fs::File::open(&file)?);
                    index.import(input, replace).await?
                }
                None => index.import(std::io::stdin().lock(), replace).await?,
            };
            print_import_report(&report);
        }
    }
    index.close().await;
    Ok(())
}

fn print_import_report(report: &ImportReport) {
    for (refused, holder) in &report.conflicts {
        println!(
            "conflict  {} {}: identity {} in the file, identity {} in the index; kept",
            refused.block.as_str(),
            refused.external_id,
            refused.identity_id,
            holder.identity_id
        );
    }
    println!(
        "import: {} links added, {} kept, {} conflicting, {} emails, {} merges",
        report.added,
        report.kept,
        report.conflicts.len(),
        report.emails,
        report.merges
    );
}
