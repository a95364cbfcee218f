//! Committing a directory to git in one call, for tests and benches that need a config
//! repo under git (`strata plan --ref main`). Not part of the library: included with
//! `#[path]` by the integration tests, the benches and the library's own unit tests.

/// Commits every file under `dir` as `author` (name, email), creating the repository
/// with its first branch `main` if there is none; returns the commit id. For benchmarks
/// and tests that need a config repo under git (`strata plan --ref main`).
pub fn commit_all(
    dir: &std::path::Path,
    author: (&str, &str),
    message: &str,
) -> Result<String, git2::Error> {
    let repo = git2::Repository::open(dir).or_else(|_| {
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        git2::Repository::init_opts(dir, &opts)
    })?;
    let mut index = repo.index()?;
    index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now(author.0, author.1)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let id = repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?;
    Ok(id.to_string())
}
