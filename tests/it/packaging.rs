//! `packaging/`: the .deb that `build-deb.sh` makes from the test build of the binary
//! (what it installs, its control fields, its maintainer scripts), and the systemd unit
//! (`systemd-analyze verify`, where that is installed). Skipped, saying so, on a machine
//! without dpkg-deb.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{root, transcript};

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// Builds the package of the test binary into `out`, uncompressed (quicker, and the
/// contents are the same); returns its path.
fn build_deb(out: &Path) -> PathBuf {
    let built = Command::new("bash")
        .arg(root().join("packaging/build-deb.sh"))
        .arg(env!("CARGO_BIN_EXE_strata"))
        .arg(out)
        .env("STRATA_DEB_COMPRESSION", "none")
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", transcript(&built));
    PathBuf::from(String::from_utf8(built.stdout).unwrap().trim())
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_deb_installs_the_binary_unit_user_man_pages_and_completions() {
    if !have("dpkg-deb") {
        eprintln!("dpkg-deb is not installed: skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(tmp.path());
    let arch = String::from_utf8(
        Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let arch = arch.trim();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        deb.file_name().unwrap().to_string_lossy(),
        format!("strata_{version}_{arch}.deb")
    );

    // The files, as `dpkg -L` would list them (modes and owners, no sizes or dates).
    let listing: Vec<String> = dpkg_deb(&["--contents"], &deb)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[0], f[1], f[5])
        })
        .collect();
    insta::assert_snapshot!("deb_contents", listing.join("\n"));

    // The control fields; what depends on the machine and the build is checked here and
    // filtered in the snapshot.
    let control = dpkg_deb(&["--field"], &deb);
    assert!(
        control.contains(&format!("\nVersion: {version}\n")),
        "{control}"
    );
    assert!(
        control.contains(&format!("\nArchitecture: {arch}\n")),
        "{control}"
    );
    let size: u64 = control
        .lines()
        .find_map(|l| l.strip_prefix("Installed-Size: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(size > 1000, "{control}");
    insta::with_settings!({ filters => vec![
        (r"\nVersion: .*", "\nVersion: [VERSION]"),
        (r"\nArchitecture: .*", "\nArchitecture: [ARCH]"),
        (r"\nInstalled-Size: .*", "\nInstalled-Size: [KIB]"),
        (r"libc6 \(>= [0-9.]+\)", "libc6 (>= [GLIBC])"),
    ]}, {
        insta::assert_snapshot!("deb_control", control);
    });

    // Unpacked: the binary runs, the unit is the one in the repo, every man page is
    // gzip'd roff, the bash completion is the binary's own, the scripts parse.
    let unpacked = tmp.path().join("unpacked");
    let out = Command::new("dpkg-deb")
        .arg("--extract")
        .arg(&deb)
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    let run = Command::new(unpacked.join("usr/bin/strata"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("strata {version}\n")
    );
    assert_eq!(
        std::fs::read_to_string(unpacked.join("usr/lib/systemd/system/strata-agent.service"))
            .unwrap(),
        std::fs::read_to_string(root().join("packaging/strata-agent.service")).unwrap()
    );
    let page = std::fs::read(unpacked.join("usr/share/man/man1/strata-cluster-join.1.gz")).unwrap();
    assert_eq!(&page[..2], [0x1f, 0x8b], "not gzip");
    let bash = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(
        std::fs::read(unpacked.join("usr/share/bash-completion/completions/strata")).unwrap(),
        bash.stdout
    );
    let scripts = tmp.path().join("control");
    let out = Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&scripts)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    for script in ["postinst", "prerm", "postrm"] {
        let check = Command::new("sh")
            .arg("-n")
            .arg(scripts.join(script))
            .output()
            .unwrap();
        assert!(check.status.success(), "{script}: {}", transcript(&check));
    }
}

#[test]
fn build_deb_refuses_a_missing_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(root().join("packaging/build-deb.sh"))
        .arg(tmp.path().join("strata"))
        .arg(tmp.path().join("deb"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not an executable file") && err.contains("help: build it first"),
        "{err}"
    );
    assert!(!tmp.path().join("deb").exists());
}

#[test]
fn the_unit_verifies_with_systemd_analyze() {
    if !have("systemd-analyze") {
        eprintln!("systemd-analyze is not installed: skipped");
        return;
    }
    // The unit as installed, its ExecStart pointed at the test binary (verify checks
    // that the program exists).
    let tmp = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root().join("packaging/strata-agent.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/strata agent"), "{unit}");
    let unit = unit.replace("/usr/bin/strata", env!("CARGO_BIN_EXE_strata"));
    let path = tmp.path().join("strata-agent.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", transcript(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("strata-agent.service:"), "{err}");
}
