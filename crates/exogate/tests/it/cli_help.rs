//! Every command and option of the `exogate` CLI says what it is for in `--help`: a walk over
//! clap's command tree fails on any subcommand or argument without help text (clap's own
//! `--help`/`--version` aside), and each command's long help is pinned as a snapshot, so a
//! command added later is covered without touching this file.

use clap::CommandFactory as _;
use exogate::cli::Cli;

/// Every command of the tree with its path (`exogate`, `exogate company list`, …), depth first.
fn commands(mut root: clap::Command) -> Vec<(String, clap::Command)> {
    fn walk(path: String, cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            // clap's generated `help` subcommand describes itself.
            if sub.get_name() == "help" {
                continue;
            }
            walk(format!("{path} {}", sub.get_name()), sub, out);
        }
    }
    root.build();
    let mut out = Vec::new();
    walk(root.get_name().to_owned(), &root, &mut out);
    out
}

fn has_text(s: Option<&clap::builder::StyledStr>) -> bool {
    s.is_some_and(|s| !s.to_string().trim().is_empty())
}

/// The commands and arguments without a description, as `path: what`.
fn undescribed(root: clap::Command) -> Vec<String> {
    let top = root.get_name().to_owned();
    let mut missing = Vec::new();
    for (path, cmd) in commands(root) {
        if path != top && !has_text(cmd.get_about()) && !has_text(cmd.get_long_about()) {
            missing.push(format!("{path}: the command"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.is_hide_set() {
                continue;
            }
            if !has_text(arg.get_help()) && !has_text(arg.get_long_help()) {
                missing.push(format!("{path}: argument `{id}`"));
            }
        }
    }
    missing
}

#[test]
fn every_command_and_option_has_help_text() {
    let missing = undescribed(Cli::command());
    assert!(
        missing.is_empty(),
        "these have no --help text (add a `///` doc comment):\n{}",
        missing.join("\n")
    );
    // The walk sees the whole tree: subcommands of subcommands and their options.
    let paths: Vec<String> = commands(Cli::command())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    for expected in ["exogate audit list", "exogate company list", "exogate demo"] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} not walked: {paths:?}"
        );
    }
}

#[test]
fn the_walk_reports_what_has_no_help() {
    // The check itself can fail: an undocumented option and subcommand, one level down, are
    // reported; documented ones and clap's own --help are not.
    #[derive(clap::Parser)]
    #[command(name = "bare")]
    struct Bare {
        /// Documented.
        #[arg(long)]
        loud: bool,
        #[command(subcommand)]
        cmd: Sub,
    }
    #[derive(clap::Subcommand)]
    enum Sub {
        Run {
            #[arg(long)]
            quiet: bool,
        },
    }
    assert_eq!(
        undescribed(Bare::command()),
        ["bare run: the command", "bare run: argument `quiet`"]
    );
}

#[test]
fn each_command_long_help_is_pinned() {
    for (path, cmd) in commands(Cli::command()) {
        // The values of `env` variables set where the test runs stay out of the snapshot.
        let mut cmd = cmd.mut_args(|a| a.hide_env_values(true));
        let help = cmd.render_long_help().to_string();
        let name = path.replace(' ', "_");
        insta::with_settings!({ description => format!("{path} --help"), omit_expression => true }, {
            insta::assert_snapshot!(format!("help_{name}"), help);
        });
    }
}
