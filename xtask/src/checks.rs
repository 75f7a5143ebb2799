//! Cheap structural checks of `cargo xtask ci`: the repository reads nothing outside itself,
//! and dependency boundaries hold (a crate built without some feature pulls no crate of a kind).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cargo;

/// Tracked files under these directories must not reach outside the repository.
const SELF_CONTAINED_DIRS: &[&str] = &["crates", "tests", "xtask", "fuzz"];

/// The kinds of files checked (prose, such as `tests/data/README.md`, may name the origin).
const SELF_CONTAINED_EXTENSIONS: &[&str] = &["rs", "toml"];

/// Strings that mean a path outside the repository wherever they appear. (Written in two
/// pieces so that this file does not contain them.)
const OUTSIDE_PATTERNS: &[&str] = &[concat!("shared/", "testdata")];

/// `git ls-files` under [`SELF_CONTAINED_DIRS`]: no `.rs` or `.toml` file may contain an
/// [`OUTSIDE_PATTERNS`] string, nor a relative path that climbs (`../`) above the repository
/// root from the package directory it sits in (the directory of the nearest `Cargo.toml`,
/// which is where `CARGO_MANIFEST_DIR` and the working directory of tests point), or, in an
/// `include_str!`/`include_bytes!` line, from the file's own directory.
pub(crate) fn self_contained(root: &Path) -> Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .context("cannot run `git ls-files` (this check needs git and a git checkout)")?;
    if !out.status.success() {
        bail!(
            "`git ls-files` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let files: Vec<&str> = std::str::from_utf8(&out.stdout)
        .context("`git ls-files` printed a non-UTF-8 path")?
        .split('\0')
        .filter(|f| !f.is_empty())
        .collect();
    let packages: HashSet<&str> = files
        .iter()
        .filter_map(|f| f.strip_suffix("Cargo.toml"))
        .map(|dir| dir.trim_end_matches('/'))
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let in_scope = SELF_CONTAINED_DIRS
            .iter()
            .any(|dir| file.starts_with(&format!("{dir}/")));
        let extension = Path::new(file).extension().and_then(|e| e.to_str());
        if !in_scope || !extension.is_some_and(|e| SELF_CONTAINED_EXTENSIONS.contains(&e)) {
            continue;
        }
        let text = std::fs::read_to_string(root.join(file))
            .with_context(|| format!("cannot read {file}"))?;
        let file_depth = Path::new(file).components().count() - 1;
        problems.extend(outside_paths(
            file,
            package_depth(file, &packages),
            file_depth,
            &text,
        ));
        checked += 1;
    }
    if !problems.is_empty() {
        bail!(
            "{} path(s) reach outside the repository; a fresh clone has nothing beside it, so \
             copy what the tests need into tests/data/ and read it from there:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    println!("{checked} tracked .rs/.toml files read nothing outside the repository");
    Ok(())
}

/// How many directories below the repository root the package holding `file` is.
fn package_depth(file: &str, packages: &HashSet<&str>) -> usize {
    let mut dir = Path::new(file).parent();
    while let Some(d) = dir {
        let d_str = d.to_str().unwrap_or_default();
        if !d_str.is_empty() && packages.contains(d_str) {
            return d.components().count();
        }
        dir = d.parent();
    }
    0
}

/// `file:line: why: the line` for each line of `text` that reaches outside the repository.
fn outside_paths(file: &str, package_depth: usize, file_depth: usize, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut why: Vec<String> = OUTSIDE_PATTERNS
            .iter()
            .filter(|p| line.contains(*p))
            .map(|p| format!("contains `{p}`"))
            .collect();
        if why.is_empty() {
            // `include_str!` paths are relative to the file, others to the package.
            let depth = if line.contains("include_str!") || line.contains("include_bytes!") {
                file_depth
            } else {
                package_depth
            };
            let climb = line
                .match_indices('"')
                .map(|(at, _)| parent_steps(&line[at + 1..]))
                .max()
                .unwrap_or(0);
            if climb > depth {
                why.push(format!(
                    "climbs {climb} directories from a package {depth} below the root"
                ));
            }
        }
        if !why.is_empty() {
            problems.push(format!(
                "  {file}:{}: {}: {}",
                number + 1,
                why.join(", "),
                line.trim()
            ));
        }
    }
    problems
}

/// How many `..` components a string literal's text starts with (`../../x"` gives 2, also
/// after a leading `/` as in `concat!(env!("CARGO_MANIFEST_DIR"), "/../x")`).
fn parent_steps(literal: &str) -> usize {
    let mut rest = literal.strip_prefix('/').unwrap_or(literal);
    let mut steps = 0;
    while let Some(after) = rest.strip_prefix("..") {
        match after.chars().next() {
            Some('/') => {
                steps += 1;
                rest = &after[1..];
            }
            None | Some('"') => return steps + 1,
            Some(_) => break,
        }
    }
    steps
}

/// A dependency boundary: `cargo tree -p <package> <args>` must list none of `forbidden`.
pub(crate) struct Boundary {
    pub(crate) package: &'static str,
    /// Arguments after `cargo tree -p <package> --prefix none` (features, edge kinds).
    pub(crate) args: &'static [&'static str],
    /// Crate names; a trailing `*` matches every name with that prefix (`aws-*`).
    pub(crate) forbidden: &'static [&'static str],
    /// Why, printed when the boundary is crossed.
    pub(crate) reason: &'static str,
}

/// The boundaries `cargo xtask ci` checks; a new one is one row.
pub(crate) const BOUNDARIES: &[Boundary] = &[
    Boundary {
        package: "ttl-cache",
        args: &["--no-default-features", "-e", "normal"],
        forbidden: &["tokio"],
        reason: "ttl-cache is a standalone cache: synchronous users compile no async runtime \
                 (tokio only behind a feature)",
    },
    Boundary {
        package: "secrets",
        args: &["-e", "normal"],
        forbidden: &["aws-*"],
        reason: "the default facade (env, file) compiles no AWS SDK; that is feature `aws`",
    },
    Boundary {
        package: "secrets",
        args: &[
            "--no-default-features",
            "--features",
            "env,file,cache,crypto,test-util",
            "-e",
            "normal",
        ],
        forbidden: &["aws-*"],
        reason: "every facade feature but `aws` leaves the AWS SDK out",
    },
    Boundary {
        package: "secrets",
        args: &["-e", "normal"],
        forbidden: &["reqwest"],
        reason: "the default facade (env, file) compiles no HTTP client; Vault is feature \
                 `vault`",
    },
    Boundary {
        package: "secrets",
        args: &[
            "--no-default-features",
            "--features",
            "env,file,cache,crypto,test-util",
            "-e",
            "normal",
        ],
        forbidden: &["reqwest"],
        reason: "only feature `vault` brings the HTTP client, whatever other features are on",
    },
    Boundary {
        package: "secrets-vault",
        args: &["-e", "normal"],
        forbidden: &[
            "openssl",
            "openssl-sys",
            "native-tls",
            "aws-lc-rs",
            "aws-lc-sys",
        ],
        reason: "one TLS stack: rustls with the ring provider, no OpenSSL and no second crypto \
                 provider (openssl-probe, which only locates the system's certificate files, is \
                 fine)",
    },
    Boundary {
        package: "secrets",
        args: &["-e", "normal"],
        forbidden: &["rusqlite", "libsqlite3-sys"],
        reason: "the default facade (env, file) compiles no SQLite; that is feature `config`",
    },
    Boundary {
        package: "secrets",
        args: &[
            "--no-default-features",
            "--features",
            "env,file,cache,crypto,config,test-util",
            "-e",
            "normal",
        ],
        forbidden: &["tokio-postgres", "postgres-*", "deadpool*", "sqlx*"],
        reason: "only feature `postgres` brings a PostgreSQL client; the embedded store is \
                 SQLite",
    },
    Boundary {
        package: "provider-config",
        args: &["--features", "postgres", "-e", "normal"],
        forbidden: &[
            "openssl",
            "openssl-sys",
            "native-tls",
            "postgres-native-tls",
            "aws-lc-rs",
            "aws-lc-sys",
            "sqlx*",
        ],
        reason: "PostgreSQL over rustls with the ring provider: no OpenSSL, no second TLS \
                 stack or crypto provider, no sqlx",
    },
    Boundary {
        package: "provider-config",
        args: &["-e", "normal"],
        forbidden: &["secrets", "secrets-*"],
        reason: "provider-config builds on ttl-cache, credential-crypto and private-fs only: \
                 no facade, no secret providers",
    },
    Boundary {
        package: "secrets",
        args: &[
            "--no-default-features",
            "--features",
            "env,file,aws,vault,cache,crypto,config,postgres,test-util",
            "-e",
            "normal",
        ],
        forbidden: &["metrics", "metrics-*"],
        reason: "only feature `metrics` brings the metrics facade, whatever other features are on",
    },
    Boundary {
        package: "ttl-cache",
        args: &["--features", "macros,async,tokio-cleanup", "-e", "normal"],
        forbidden: &["metrics", "metrics-*"],
        reason: "ttl-cache exports through the metrics facade only with its feature `metrics`",
    },
];

/// Checks every row of [`BOUNDARIES`], reporting all that fail.
pub(crate) fn dependency_boundaries(boundaries: &[Boundary]) -> Result<()> {
    let mut failures = Vec::new();
    for boundary in boundaries {
        let shown = format!(
            "cargo tree -p {} --prefix none {}",
            boundary.package,
            boundary.args.join(" ")
        );
        let tree = cargo_tree(boundary.package, boundary.args, &[])
            .with_context(|| format!("`{shown}`"))?;
        let offending = offending_crates(&tree, boundary.forbidden);
        if offending.is_empty() {
            println!("{shown}: none of {} (ok)", boundary.forbidden.join(", "));
            continue;
        }
        let mut failure = format!(
            "`{shown}` lists {}: {}",
            offending.iter().cloned().collect::<Vec<_>>().join(", "),
            boundary.reason
        );
        // Who pulls the first one in, as an inverted tree.
        let first = offending.iter().next().expect("not empty");
        if let Ok(inverted) = cargo_tree(
            boundary.package,
            boundary.args,
            &["--invert", first.as_str()],
        ) {
            failure.push_str(&format!("\n    path (cargo tree --invert {first}):"));
            for line in inverted.lines() {
                failure.push_str(&format!("\n      {line}"));
            }
        }
        failures.push(failure);
    }
    if !failures.is_empty() {
        bail!(
            "{} dependency boundar{} crossed:\n  {}",
            failures.len(),
            if failures.len() == 1 { "y" } else { "ies" },
            failures.join("\n  ")
        );
    }
    Ok(())
}

fn cargo_tree(package: &str, args: &[&str], extra: &[&str]) -> Result<String> {
    let prefix = if extra.is_empty() { "none" } else { "indent" };
    let out = cargo()
        .args(["tree", "--package", package, "--prefix", prefix])
        .args(args)
        .args(extra)
        .output()
        .context("cannot run cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("cargo tree printed non-UTF-8")
}

/// The names in a `cargo tree --prefix none` listing (`tokio v1.48.0`, one per line) that
/// `forbidden` matches.
fn offending_crates(tree: &str, forbidden: &[&str]) -> BTreeSet<String> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| {
            forbidden.iter().any(|f| match f.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == f,
            })
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `^` stands for `../` (so that this file holds no path that climbs out).
    fn climbing(text: &str) -> String {
        text.replace('^', "../")
    }

    #[test]
    fn paths_that_leave_the_repository_are_found_with_file_and_line() {
        let text = climbing(
            "fn data() {\n    let p = Path::new(env!(\"CARGO_MANIFEST_DIR\")).join(\"^^^elsewhere/x.json\");\n}\n",
        );
        let problems = outside_paths("crates/a/src/tests.rs", 2, 3, &text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("  crates/a/src/tests.rs:2: "),
            "{problems:?}"
        );

        let named = format!("let d = \"{}\";", concat!("/srv/shared/", "testdata"));
        assert_eq!(outside_paths("xtask/src/x.rs", 1, 2, &named).len(), 1);
    }

    #[test]
    fn paths_inside_the_repository_pass() {
        for (file, depth, text) in [
            ("crates/a/src/tests.rs", 2, ".join(\"^^tests/data\")"),
            ("tests/src/lib.rs", 1, ".join(\"^target/test-venv\")"),
            ("fuzz/Cargo.toml", 1, "a = { path = \"^crates/a\" }"),
            (
                "crates/a/src/lib.rs",
                2,
                "concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/^^x\")",
            ),
            ("crates/a/src/lib.rs", 2, "let s = \"...\"; let t = \"..\";"),
        ] {
            let problems = outside_paths(file, depth, depth + 1, &climbing(text));
            assert!(problems.is_empty(), "{text}: {problems:?}");
        }
        assert_eq!(
            outside_paths("tests/x.rs", 1, 1, &climbing("\"^^x\"")).len(),
            1
        );
        // `include_str!` climbs from the file's directory, not the package's.
        let readme = climbing("#[doc = include_str!(\"^^^README.md\")]");
        assert!(outside_paths("crates/a/src/lib.rs", 2, 3, &readme).is_empty());
        assert_eq!(outside_paths("crates/a/lib.rs", 2, 2, &readme).len(), 1);
        assert_eq!(parent_steps(&climbing("^^..\"")), 3);
    }

    #[test]
    fn the_package_is_the_nearest_directory_with_a_manifest() {
        let packages: HashSet<&str> = ["crates/a", "tests", "fuzz"].into_iter().collect();
        assert_eq!(package_depth("crates/a/src/x/y.rs", &packages), 2);
        assert_eq!(package_depth("tests/tests/t.rs", &packages), 1);
        assert_eq!(package_depth("docs/x.rs", &packages), 0);
    }

    #[test]
    fn forbidden_names_match_exactly_or_by_prefix() {
        let tree = "secrets v0.1.0 (/r/crates/secrets)\naws-config v1.0.0\ntokio v1.48.0\ntokio-util v0.7.0 (*)\n";
        let names = |forbidden: &[&str]| -> Vec<String> {
            offending_crates(tree, forbidden).into_iter().collect()
        };
        assert_eq!(names(&["tokio"]), ["tokio"]);
        assert_eq!(names(&["aws-*", "reqwest"]), ["aws-config"]);
        assert!(names(&["reqwest"]).is_empty());
    }
}
