//! Signed audit checkpoints at the edge: the Ed25519 key file, the JSONL file of checkpoints,
//! the optional webhook, and the worker's job that writes them.
//!
//! - The private key is a PKCS#8 v2 PEM file (`[audit] checkpoint_key_file`), created 0600 on
//!   first use or by `exogate audit keygen`; beside it, `<key file>.pub` holds the public key as
//!   one line `ed25519 <base64 of the 32-byte key>`. Keep a copy of that line somewhere the
//!   server cannot write: verifying against it is what stops someone who can rewrite the
//!   database, the checkpoint file and the key file together.
//! - Every `[audit] checkpoint_interval_minutes` on the app's clock, when the chain's head has
//!   moved, the worker checks the events since its last checkpoint link to it, signs
//!   `(seq, head, at, key_id)` (bytes defined by [`exogate_core::checkpoint`]), appends one JSON
//!   line `{"seq","head","at","key_id","signature"}` to `[audit] checkpoint_file`, fsyncs it,
//!   and POSTs the same line to `[audit] checkpoint_webhook_url` if set (best effort).
//! - A chain that contradicts the last checkpoint is not signed: the worker logs an error and
//!   publishes [`AppEvent::AuditCheckpointRefused`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use exogate_core::Timestamp;
use exogate_core::audit::ChainVerifier;
use exogate_core::checkpoint::{Checkpoint, key_id};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::app::{App, AppEvent};
use crate::config::Config;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";
const PUBLIC_PREFIX: &str = "ed25519 ";

/// What went wrong with a key or a checkpoint file. Each names the file; none carries key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read the checkpoint key `{path}`: {reason}")]
    KeyUnreadable { path: PathBuf, reason: String },
    #[error("`{path}` is not an Ed25519 key in the expected format")]
    KeyInvalid { path: PathBuf },
    #[error("the checkpoint key `{path}` exists already (remove it first to make a new one)")]
    KeyExists { path: PathBuf },
    #[error("cannot write `{path}`: {reason}")]
    Unwritable { path: PathBuf, reason: String },
    #[error("cannot read the checkpoint file `{path}`: {reason}")]
    FileUnreadable { path: PathBuf, reason: String },
    #[error(
        "no public key to verify checkpoints with: pass --public-key FILE (or keep `{path}` beside the key)"
    )]
    NoPublicKey { path: PathBuf },
}

impl CheckpointError {
    /// Stable code for machine-readable output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeyUnreadable { .. } => "checkpoint_key_unreadable",
            Self::KeyInvalid { .. } => "checkpoint_key_invalid",
            Self::KeyExists { .. } => "checkpoint_key_exists",
            Self::Unwritable { .. } => "checkpoint_unwritable",
            Self::FileUnreadable { .. } => "checkpoint_file_unreadable",
            Self::NoPublicKey { .. } => "checkpoint_key_missing",
        }
    }
}

/// The private signing key. Its `Debug` shows only the key id.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey {{ key_id: {}, private: [redacted] }}",
            self.public.key_id
        )
    }
}

/// A public key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: Vec<u8>,
    key_id: String,
}

impl PublicKey {
    fn new(bytes: Vec<u8>) -> Self {
        let key_id = key_id(&bytes);
        Self { bytes, key_id }
    }
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// The `.pub` file's line: `ed25519 <base64>`.
    pub fn to_line(&self) -> String {
        format!(
            "{PUBLIC_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(&self.bytes)
        )
    }
    /// Reads a `.pub` file.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let text = std::fs::read_to_string(path).map_err(|e| CheckpointError::KeyUnreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let b64 = text.trim();
        let b64 = b64.strip_prefix(PUBLIC_PREFIX).unwrap_or(b64).trim();
        match base64::engine::general_purpose::STANDARD.decode(b64) {
            Ok(bytes) if bytes.len() == 32 => Ok(Self::new(bytes)),
            _ => Err(CheckpointError::KeyInvalid {
                path: path.to_owned(),
            }),
        }
    }
    /// Whether `signature` signs `checkpoint` with this key.
    pub fn verifies(&self, checkpoint: &Checkpoint, signature: &[u8]) -> bool {
        checkpoint.key_id == self.key_id
            && UnparsedPublicKey::new(&ED25519, &self.bytes)
                .verify(&checkpoint.signed_bytes(), signature)
                .is_ok()
    }
}

impl SigningKey {
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    fn from_der(der: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| CheckpointError::KeyInvalid {
            path: path.to_owned(),
        })?;
        let public = PublicKey::new(pair.public_key().as_ref().to_vec());
        Ok(Self { pair, public })
    }

    /// Reads a PKCS#8 PEM key file.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let text = std::fs::read_to_string(path).map_err(|e| CheckpointError::KeyUnreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let body: String = text
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != PEM_BEGIN)
            .skip(1)
            .take_while(|l| *l != PEM_END)
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| CheckpointError::KeyInvalid {
                path: path.to_owned(),
            })?;
        Self::from_der(&der, path)
    }

    /// Makes a new key at `path` (0600; refused if it exists) and its `.pub` file beside it.
    pub fn generate(path: &Path) -> Result<Self, CheckpointError> {
        let unwritable = |p: &Path, e: &dyn std::fmt::Display| CheckpointError::Unwritable {
            path: p.to_owned(),
            reason: e.to_string(),
        };
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| unwritable(path, &e))?;
        let key = Self::from_der(doc.as_ref(), path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| unwritable(dir, &e))?;
        }
        let mut pem = format!("{PEM_BEGIN}\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CheckpointError::KeyExists {
                    path: path.to_owned(),
                }
            } else {
                unwritable(path, &e)
            }
        })?;
        file.write_all(pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| unwritable(path, &e))?;
        let public_path = public_key_path(path);
        std::fs::write(&public_path, format!("{}\n", key.public.to_line()))
            .map_err(|e| unwritable(&public_path, &e))?;
        Ok(key)
    }

    /// Reads the key at `path`, making it first if there is none.
    pub fn read_or_generate(path: &Path) -> Result<Self, CheckpointError> {
        if path.exists() {
            Self::read(path)
        } else {
            tracing::info!(path = %path.display(), "creating the audit checkpoint key");
            Self::generate(path)
        }
    }

    /// Signs `checkpoint` (whose `key_id` must be this key's).
    pub fn sign(&self, checkpoint: &Checkpoint) -> Vec<u8> {
        self.pair.sign(&checkpoint.signed_bytes()).as_ref().to_vec()
    }
}

/// Where the public key of the key at `key_file` is kept: `<key_file>.pub`.
pub fn public_key_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// One line of the checkpoint file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub seq: i64,
    pub head: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub key_id: String,
    /// Base64 of the 64-byte Ed25519 signature.
    pub signature: String,
}

impl Line {
    pub fn new(checkpoint: &Checkpoint, signature: &[u8]) -> Self {
        Self {
            seq: checkpoint.seq,
            head: checkpoint.head.clone(),
            at: checkpoint.at.to_string(),
            key_id: checkpoint.key_id.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
        }
    }

    /// The checkpoint, if `at` parses.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let at =
            time::OffsetDateTime::parse(&self.at, &time::format_description::well_known::Rfc3339)
                .ok()?;
        Some(Checkpoint {
            seq: self.seq,
            head: self.head.clone(),
            at: Timestamp::from_offset_date_time(at),
            key_id: self.key_id.clone(),
        })
    }

    fn signature(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .ok()
    }
}

/// A line of the checkpoint file that `key` did not sign (or that does not parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forged {
    /// 1-based line number.
    pub line: usize,
    pub seq: Option<i64>,
    pub at: Option<String>,
    pub reason: &'static str,
}

impl std::fmt::Display for Forged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "checkpoint on line {}", self.line)?;
        if let Some(seq) = self.seq {
            write!(f, " (event {seq}")?;
            if let Some(at) = &self.at {
                write!(f, ", taken at {at}")?;
            }
            f.write_str(")")?;
        }
        write!(f, " {}", self.reason)
    }
}

/// The checkpoints of `text` (one JSON object a line; blank lines skipped), each checked
/// against `key`. The first line that is not a checkpoint signed by `key` is an error.
pub fn parse_signed(text: &str, key: &PublicKey) -> Result<Vec<(usize, Checkpoint)>, Forged> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let forged = |seq, at, reason| Forged {
            line: number,
            seq,
            at,
            reason,
        };
        let line: Line = serde_json::from_str(raw)
            .map_err(|_| forged(None, None, "is not a checkpoint (bad JSON)"))?;
        let seq = Some(line.seq);
        let at = Some(line.at.clone());
        let checkpoint = line
            .checkpoint()
            .ok_or_else(|| forged(seq, at.clone(), "has an unreadable time"))?;
        if checkpoint.key_id != key.key_id {
            return Err(forged(
                seq,
                at,
                "is signed by another key (its key_id is not the public key's)",
            ));
        }
        let valid = line
            .signature()
            .is_some_and(|sig| key.verifies(&checkpoint, &sig));
        if !valid {
            return Err(forged(
                seq,
                at,
                "has a signature that does not verify (the line was altered or forged)",
            ));
        }
        out.push((number, checkpoint));
    }
    Ok(out)
}

/// The worker's checkpoint job, built from the configuration.
pub struct Checkpointer {
    key: SigningKey,
    file: PathBuf,
    interval: time::Duration,
    webhook: Option<Url>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("key", &self.key)
            .field("file", &self.file)
            .field("interval", &self.interval)
            .field("webhook", &self.webhook.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

/// What the job remembers between rounds.
#[derive(Debug, Default)]
pub struct CheckpointState {
    loaded: bool,
    last: Option<Checkpoint>,
    due_at: Option<Timestamp>,
}

impl Checkpointer {
    /// The job the configuration asks for (None when `checkpoint_interval_minutes` is 0). Reads
    /// the key, creating it on first use.
    pub fn from_config(config: &Config) -> Result<Option<Arc<Self>>, CheckpointError> {
        let Some(interval) = config.audit_checkpoint_interval else {
            return Ok(None);
        };
        let key = SigningKey::read_or_generate(&config.audit_checkpoint_key_file)?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CheckpointError::Unwritable {
                path: config.audit_checkpoint_file.clone(),
                reason: format!("cannot build the webhook client: {e}"),
            })?;
        tracing::info!(key_id = key.public.key_id(), file = %config.audit_checkpoint_file.display(), "audit checkpoints enabled");
        Ok(Some(Arc::new(Self {
            key,
            file: config.audit_checkpoint_file.clone(),
            interval,
            webhook: config.audit_checkpoint_webhook.clone(),
            http,
        })))
    }

    /// The newest checkpoint in the file that this key signed (lines it did not sign are
    /// skipped with a warning).
    fn last_in_file(&self) -> Option<Checkpoint> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(file = %self.file.display(), error = %e, "cannot read the audit checkpoint file");
                return None;
            }
        };
        let mut last = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match parse_signed(line, &self.key.public) {
                Ok(mut found) => last = found.pop().map(|(_, c)| c),
                Err(forged) => {
                    tracing::warn!(file = %self.file.display(), problem = %forged, "skipping a checkpoint line");
                }
            }
        }
        last
    }

    /// Runs when due on the app's clock: signs the chain's head if it moved and the events
    /// since the last checkpoint link to it.
    pub async fn tick(&self, app: &App, state: &mut CheckpointState) {
        let now = app.clock.now();
        if state.due_at.is_some_and(|due| now < due) {
            return;
        }
        state.due_at = Some(now.plus_millis(self.interval.whole_milliseconds() as i64));
        if !state.loaded {
            state.last = self.last_in_file();
            state.loaded = true;
        }
        match self.extend(app, state.last.as_ref(), now).await {
            Ok(Some(checkpoint)) => {
                tracing::info!(
                    seq = checkpoint.seq,
                    key_id = %checkpoint.key_id,
                    "audit checkpoint written"
                );
                app.publish(AppEvent::AuditCheckpointWritten {
                    seq: checkpoint.seq,
                });
                state.last = Some(checkpoint);
            }
            Ok(None) => {}
            Err(Refused::Chain(problem)) => {
                tracing::error!(problem = %problem, "audit chain contradicts the last checkpoint; not signing it");
                app.publish(AppEvent::AuditCheckpointRefused);
            }
            Err(Refused::Failed(problem)) => {
                tracing::warn!(problem = %problem, "writing an audit checkpoint failed");
            }
        }
    }

    async fn extend(
        &self,
        app: &App,
        last: Option<&Checkpoint>,
        now: Timestamp,
    ) -> Result<Option<Checkpoint>, Refused> {
        let failed = |e: &dyn std::fmt::Display| Refused::Failed(e.to_string());
        let Some((head_seq, head_hash)) = app.store.audit_head().await.map_err(|e| failed(&e))?
        else {
            return Ok(None);
        };
        if let Some(last) = last {
            if head_seq == last.seq && head_hash == last.head {
                return Ok(None);
            }
            if head_seq <= last.seq {
                return Err(Refused::Chain(format!(
                    "the head is event {head_seq} but checkpoint of event {} taken at {} came before",
                    last.seq, last.at
                )));
            }
        }
        let mut verifier = last.map_or_else(ChainVerifier::default, |l| {
            ChainVerifier::after(l.seq, &l.head)
        });
        let mut after = last.map_or(0, |l| l.seq);
        while after < head_seq {
            let page = app
                .store
                .list_audit(after, 1000)
                .await
                .map_err(|e| failed(&e))?;
            let Some(newest) = page.last() else { break };
            after = newest.seq;
            for e in page.iter().take_while(|e| e.seq <= head_seq) {
                verifier
                    .push(e)
                    .map_err(|b| Refused::Chain(b.to_string()))?;
            }
        }
        let report = verifier
            .finish(Some((head_seq, head_hash.as_str())))
            .map_err(|b| Refused::Chain(b.to_string()))?;
        if report.last_seq != head_seq {
            return Err(Refused::Chain(format!(
                "the chain ends at event {} but its head records event {head_seq}",
                report.last_seq
            )));
        }
        let checkpoint = Checkpoint {
            seq: head_seq,
            head: head_hash,
            at: now,
            key_id: self.key.public.key_id.clone(),
        };
        let line = Line::new(&checkpoint, &self.key.sign(&checkpoint));
        let text = serde_json::to_string(&line).map_err(|e| failed(&e))?;
        let file = self.file.clone();
        let body = text.clone();
        tokio::task::spawn_blocking(move || append_line(&file, &body))
            .await
            .map_err(|e| failed(&e))?
            .map_err(|e| failed(&e))?;
        if let Some(url) = &self.webhook {
            let http = self.http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let host = url.host_str().unwrap_or("").to_owned();
                let sent = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(text)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                if let Err(e) = sent {
                    // The URL may carry a token: only its host is logged.
                    tracing::warn!(host = %host, error = %e.without_url(), "sending the audit checkpoint to the webhook failed");
                }
            });
        }
        Ok(Some(checkpoint))
    }
}

enum Refused {
    /// The chain does not extend the last checkpoint (or is broken): never signed.
    Chain(String),
    /// The store or the file failed; tried again next time.
    Failed(String),
}

fn append_line(path: &Path, line: &str) -> Result<(), CheckpointError> {
    let unwritable = |e: std::io::Error| CheckpointError::Unwritable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(unwritable)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(unwritable)?;
    file.write_all(format!("{line}\n").as_bytes())
        .map_err(unwritable)?;
    file.sync_all().map_err(unwritable)
}
