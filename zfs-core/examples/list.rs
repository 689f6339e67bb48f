//! A `zfs list`-like lister over [`Zfs::list`]: one nosync channel program, no fork.
//!
//! ```text
//! cargo run -p libzfs-core --example list -- [-r] [-t TYPES] [-o PROPS] DATASET
//! list -r -t all -o name,type,used,creation tank
//! ```
//!
//! `-t` takes `all` or a comma list of `filesystem`, `volume`, `snapshot`, `bookmark`
//! (default `filesystem,volume`); `-o` a comma list of properties, `name` and `type`
//! included (default `name,type,used,referenced`); `-r` lists the whole subtree. Numbers
//! are printed exactly (as `zfs list -p`); `-` is a property that does not apply.

use libzfs_core::{DatasetKind, ListOptions, Zfs};
use std::process::ExitCode;

const USAGE: &str =
    "usage: list [-r] [-t all|filesystem,volume,snapshot,bookmark] [-o name,type,PROP...] DATASET";

/// What the command line asks for.
struct Args {
    recursive: bool,
    types: Vec<DatasetKind>,
    columns: Vec<String>,
    dataset: String,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        recursive: false,
        types: vec![DatasetKind::Filesystem, DatasetKind::Volume],
        columns: ["name", "type", "used", "referenced"]
            .map(String::from)
            .to_vec(),
        dataset: String::new(),
    };
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "-r" => a.recursive = true,
            "-t" => {
                let t = argv.next().ok_or("-t needs a list of types")?;
                a.types = if t == "all" {
                    vec![
                        DatasetKind::Filesystem,
                        DatasetKind::Volume,
                        DatasetKind::Snapshot,
                        DatasetKind::Bookmark,
                    ]
                } else {
                    t.split(',')
                        .map(|k| DatasetKind::parse(k).ok_or(format!("unknown type {k:?}")))
                        .collect::<Result<_, _>>()?
                };
            }
            "-o" => {
                let o = argv.next().ok_or("-o needs a list of properties")?;
                a.columns = o.split(',').map(String::from).collect();
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if a.dataset.is_empty() => a.dataset = arg,
            _ => return Err(format!("one dataset only ({arg:?} is a second)")),
        }
    }
    if a.dataset.is_empty() {
        return Err("no dataset given".into());
    }
    Ok(a)
}

fn run(a: &Args) -> Result<(), libzfs_core::Error> {
    let props: Vec<&str> = a
        .columns
        .iter()
        .map(String::as_str)
        .filter(|c| !matches!(*c, "name" | "type"))
        .collect();
    let options = ListOptions::new()
        .itself(true)
        .children(a.recursive)
        .recursive(a.recursive)
        .snapshots(a.types.contains(&DatasetKind::Snapshot))
        .bookmarks(a.types.contains(&DatasetKind::Bookmark))
        .props(&props);
    let rows: Vec<Vec<String>> = Zfs::get()?
        .list(&a.dataset, &options)?
        .into_iter()
        .filter(|e| a.types.contains(&e.kind))
        .map(|e| {
            a.columns
                .iter()
                .map(|c| match c.as_str() {
                    "name" => e.name.clone(),
                    "type" => e.kind.to_string(),
                    p => e.get(p).map_or("-".into(), |r| r.value.to_string()),
                })
                .collect()
        })
        .collect();
    let header: Vec<String> = a.columns.iter().map(|c| c.to_uppercase()).collect();
    let width = |i: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    for row in [&header].into_iter().chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(why) => {
            eprintln!("list: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("list: {e}");
            ExitCode::FAILURE
        }
    }
}
