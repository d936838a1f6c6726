use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use steward::auth::keys::SigningKeys;
use steward::clock::{Clock, SystemClock};
use steward::config::Config;
use steward::db::{write_transaction, Db};
use steward::domain::{self, Email, NewPassword, Username};
use steward::identity::{self, NewOrganization};

#[derive(Parser)]
#[command(
    name = "steward",
    version,
    about = "Account and user management behind a SaaS front end"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Create an organization and its first owner (for when open sign-up is off).
    /// The password is read from STEWARD_OWNER_PASSWORD, or else from the first line of stdin.
    CreateOwner {
        #[arg(long)]
        organization: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        #[arg(long)]
        username: Option<String>,
    },
    /// Retire the access-token signing key and make a new one. The old public key moves to
    /// STEWARD_RETIRED_SIGNING_KEYS_DIR, where it stays published and accepted until the
    /// tokens it signed have expired. Restart every instance (with the same files) afterwards.
    RotateSigningKey,
}

fn main() -> ExitCode {
    steward::allocator::tune();
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", steward::openapi::document_json());
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("steward: {e}");
            return ExitCode::from(2);
        }
    };
    steward::logging::init(&config.log_filter, config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Migrate => migrate(&config),
        Command::CreateOwner {
            organization,
            email,
            first_name,
            last_name,
            username,
        } => create_owner(&config, organization, email, first_name, last_name, username),
        Command::RotateSigningKey => rotate_signing_key(&config),
        Command::Openapi => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("steward: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> Result<(), String> {
    let (keys, generated) = SigningKeys::load_or_generate(&config.signing_key_file).map_err(|e| e.to_string())?;
    if generated {
        log::warn!(
            "no signing key at {}: generated a new Ed25519 key there; keep it (restarts reuse it) and give every instance the same file",
            config.signing_key_file.display()
        );
    }
    log::info!("kid {} signs access tokens", keys.kid);
    let backend = config.database_url.backend_name();
    let bind = config.bind;
    actix_web::rt::System::new().block_on(async move {
        let app = steward::Application::build(config, Arc::new(SystemClock), keys).map_err(|e| e.to_string())?;
        log::info!("steward listening on {bind} (database: {backend})");
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn rotate_signing_key(config: &Config) -> Result<(), String> {
    let rotation = steward::auth::keys::rotate(
        &config.signing_key_file,
        &config.retired_signing_keys_dir,
        config.retired_key_keep(),
        SystemClock.now().and_utc(),
    )
    .map_err(|e| e.to_string())?;
    println!(
        "retired kid {} (kept in {} while its tokens may live); kid {} now signs",
        rotation.retired_kid,
        config.retired_signing_keys_dir.display(),
        rotation.new_kid
    );
    if rotation.pruned > 0 {
        println!(
            "deleted {} retired key(s) whose tokens have all expired",
            rotation.pruned
        );
    }
    println!("restart every instance, each with the new key file and the retired keys directory");
    Ok(())
}

fn migrate(config: &Config) -> Result<(), String> {
    let db = Db::connect(&config.database_url, 1, config.database_timeout).map_err(|e| e.to_string())?;
    let applied = db.migrate().map_err(|e| e.to_string())?;
    println!("applied {} migration(s) on {}", applied.len(), db.backend());
    for m in applied {
        println!("  {m}");
    }
    Ok(())
}

fn bad(field: &'static str) -> impl Fn(validator::ValidationError) -> String {
    move |e| format!("--{field}: {}", e.message.unwrap_or_default())
}

fn create_owner(
    config: &Config,
    organization: String,
    email: String,
    first_name: String,
    last_name: String,
    username: Option<String>,
) -> Result<(), String> {
    let password = match std::env::var("STEWARD_OWNER_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let password = NewPassword::parse(&password).map_err(bad("password"))?;
    let input = NewOrganization {
        organization_name: domain::parse_name(&organization).map_err(bad("organization"))?,
        email: Email::parse(&email).map_err(bad("email"))?,
        username: username
            .as_deref()
            .map(Username::parse)
            .transpose()
            .map_err(bad("username"))?,
        first_name: domain::parse_name(&first_name).map_err(bad("first-name"))?,
        last_name: domain::parse_name(&last_name).map_err(bad("last-name"))?,
        password_hash: steward::auth::password::hash_blocking(password.expose()).map_err(|e| format!("{e:?}"))?,
    };
    let db = Db::connect(&config.database_url, 1, config.database_timeout).map_err(|e| e.to_string())?;
    db.migrate().map_err(|e| e.to_string())?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let now = SystemClock.now();
    let (user, account) = write_transaction(&mut conn, |conn| identity::create_organization(conn, &input, None, now))
        .map_err(|e| e.detail().to_string())?;
    println!(
        "created organization {} ({}) with owner {} ({})",
        account.name, account.id, user.email, user.id
    );
    Ok(())
}
