//! Tests of reading a repo: from git objects and from the working tree, and (on Unix)
//! symbolic links at a ref.

use super::*;

#[test]
fn a_ref_is_read_from_git_objects_not_the_working_tree() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.kdl"),
        "cluster \"a\"\ngroup \"Main_Group\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join(".hidden")).unwrap();
    std::fs::write(dir.path().join(".hidden/x.kdl"), "garbage {").unwrap();
    let first = git::commit_all(dir.path(), ("Ada", "ada@example.com"), "first\n\nbody").unwrap();
    // An uncommitted edit is not seen through the ref.
    std::fs::write(dir.path().join("cluster.kdl"), "cluster \"b\"\n").unwrap();
    let snap = read_ref(dir.path(), "HEAD").unwrap();
    assert_eq!(snap.kdl.len(), 1);
    assert!(snap.kdl[0].text.contains("cluster \"a\""));
    assert_eq!(snap.origin.source, Source::Git { commit: first });
    assert_eq!(snap.origin.author, "Ada <ada@example.com>");
    assert_eq!(snap.origin.message, "first\n\nbody");
    let checked = check(&snap);
    assert!(!checked.diags.has_errors());
    assert_eq!(checked.repo.cluster_name(), Some("a"));

    let err = read_ref(dir.path(), "no-such-branch").unwrap_err();
    assert!(err.to_string().starts_with("git: "), "{err}");
}

#[cfg(unix)]
mod link_tests {
    use std::os::unix::fs::symlink;

    use super::super::*;

    /// A git repo with a cluster, a group and `shared/machines/lab1.kdl`.
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "config/cluster.kdl",
            "cluster \"a\"\ngroup \"Main_Group\"\n",
        );
        write("shared/machines/lab1.kdl", "machine \"lab1\"\n");
        dir
    }

    fn commit(dir: &Path) {
        git::commit_all(dir, ("Ada", "ada@example.com"), "links").unwrap();
    }

    #[test]
    fn a_link_inside_the_commit_is_followed_as_in_the_working_tree() {
        let dir = repo();
        // The config repo is a subdirectory; its `machines` links out of it, into the
        // same git repository, and a link to a link to a file is followed too.
        symlink("../shared/machines", dir.path().join("config/machines")).unwrap();
        symlink("machines/lab1.kdl", dir.path().join("config/again.kdl")).unwrap();
        commit(dir.path());
        let config = dir.path().join("config");
        let snap = read_ref(&config, "HEAD").unwrap();
        let names: Vec<&str> = snap.kdl.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["again.kdl", "cluster.kdl", "machines/lab1.kdl"]);
        assert!(snap.kdl[2].text.contains("lab1"));
        let tree = read_worktree(&config, "ada").unwrap();
        let names: Vec<&str> = tree.kdl.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["again.kdl", "cluster.kdl", "machines/lab1.kdl"]);
    }

    #[test]
    fn links_that_leave_the_commit_or_loop_are_refused_naming_the_link() {
        for (link, target, why) in [
            ("config/machines", "/etc", "absolute path `/etc`"),
            (
                "config/machines",
                "../../outside",
                "leads out of the repository",
            ),
            (
                "config/machines",
                "../nowhere",
                "broken: `nowhere` is not in the commit",
            ),
            ("config/machines", ".", "loops: it leads back to `config`"),
            ("config/machines", "machines", "loops: more than 40 links"),
        ] {
            let dir = repo();
            symlink(target, dir.path().join(link)).unwrap();
            commit(dir.path());
            let err = read_ref(&dir.path().join("config"), "HEAD").unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("the symbolic link `machines`") && text.contains(why),
                "{target}: {text}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_utf8_is_a_problem_at_the_ref_too() {
        let dir = repo();
        std::fs::write(dir.path().join("config/bad.kdl"), b"\xff").unwrap();
        commit(dir.path());
        let snap = read_ref(&dir.path().join("config"), "HEAD").unwrap();
        assert_eq!(snap.unread, ["bad.kdl"]);
        let checked = check(&snap);
        let codes: Vec<&str> = checked.diags.problems().iter().map(|p| p.code).collect();
        assert!(codes.contains(&"strata::repo::not-utf8"), "{codes:?}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_unread_at_the_ref_and_in_the_tree() {
        let dir = repo();
        let big = std::fs::File::create(dir.path().join("config/big.kdl")).unwrap();
        big.set_len(MAX_KDL_BYTES + 1).unwrap();
        // Through a link too: the object is read the same way.
        symlink("big.kdl", dir.path().join("config/again.kdl")).unwrap();
        commit(dir.path());
        let config = dir.path().join("config");
        let snap = read_ref(&config, "HEAD").unwrap();
        assert_eq!(snap.unread, ["again.kdl", "big.kdl"]);
        let tree = read_worktree(&config, "ada").unwrap();
        assert_eq!(tree.unread, ["again.kdl", "big.kdl"]);
        for snap in [snap, tree] {
            let checked = check(&snap);
            let big = checked
                .diags
                .problems()
                .iter()
                .find(|p| p.at.as_ref().is_some_and(|at| at.file.name == "big.kdl"))
                .expect("big.kdl is a problem");
            assert_eq!(big.code, "strata::repo::too-large");
            assert!(big.message.contains("4,194,305 bytes"), "{}", big.message);
            assert!(big.message.contains("4,194,304"), "{}", big.message);
            assert!(big.help.is_some());
            assert!(checked.diags.has_errors());
        }
    }
}
