//! chatclient's command line: --help with examples, shell completions, the
//! man page, and where settings come from: flags and arguments over the
//! environment over the config file over the defaults. A password in the
//! config file, or a broken one, is a usage error (status 2).

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// Runs `chatclient ARGS` with `env`, its input closed, and returns
/// (exit code, stdout lines, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Vec<String>, String) {
    let mut cmd = command(CHATCLIENT);
    cmd.args(args).envs(env.iter().copied());
    let mut client = Proc::spawn("chatclient", cmd);
    client.close_stdin();
    let status = client.wait_exit(TIMEOUT);
    let out = client.out.seen().to_vec();
    (status.code(), out, client.err.text())
}

#[test]
fn help_has_examples_and_the_environment() {
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, Some(0));
    let help = out.join("\n");
    for needle in [
        "Examples:",
        "--json",
        "CHAT_SERVER",
        "CHAT_PORT",
        "CHAT_USER",
        "CHAT_PASSWORD",
        "config file",
        "completions",
        "Exit status:",
    ] {
        assert!(help.contains(needle), "no {needle:?} in\n{help}");
    }
    assert!(!help.contains("--password"), "no password flag");
    assert!(!help.contains("generate-man"), "hidden");
}

#[test]
fn completions_for_a_shell() {
    for (shell, needle) in [
        ("bash", "_chatclient"),
        ("zsh", "#compdef chatclient"),
        ("fish", "complete -c chatclient"),
    ] {
        let (code, out, err) = run(&["completions", shell], &[]);
        assert_eq!(code, Some(0), "{shell}: {err}");
        assert!(out.join("\n").contains(needle), "{shell}");
    }
    let (code, _, err) = run(&["completions", "tcsh"], &[]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn man_page() {
    let dir = temp_dir();
    let out = dir.path().join("man");
    let (code, _, err) = run(&["--generate-man", out.to_str().unwrap()], &[]);
    assert_eq!(code, Some(0), "{err}");
    let page = fs::read_to_string(out.join("chatclient.1")).expect("chatclient.1");
    assert!(page.contains(".TH chatclient 1"), "{page}");
    assert!(page.contains("CHAT_SERVER"), "{page}");
    assert!(out.join("chatclient-completions.1").exists());
}

fn write_config(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).expect("write the config");
    path.to_str().expect("UTF-8").to_string()
}

/// Starts a client with `args` and `env` (password on stdin) and returns
/// the name it connects as, once logged in.
fn logs_in_as(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = command(CHATCLIENT);
    cmd.args(args)
        .envs(env.iter().copied())
        .env("CHAT_KNOWN_SERVERS", NULL_FILE);
    let mut client = Proc::spawn("chatclient", cmd);
    client.send("secret");
    let line = client.expect_prefix("Connecting as ", TIMEOUT);
    let name = line["Connecting as ".len()..line.len() - 3].to_string();
    client.expect_with(
        &|l| l.contains(&format!("logged in as {name}; ")),
        "login",
        TIMEOUT,
    );
    exit_cleanly(&mut client);
    name
}

#[test]
fn flags_over_environment_over_config_file_over_defaults() {
    let server = Server::start();
    let dir = temp_dir();
    let port = server.port().to_string();
    let config = write_config(
        dir.path(),
        "good.toml",
        &format!("server = \"127.0.0.1\"\nport = {port}\nuser = \"fromfile\"\ncolor = \"never\"\n"),
    );
    let from_file = [("CHAT_CONFIG", config.as_str())];
    assert_eq!(logs_in_as(&[], &from_file), "fromfile");

    let env = [("CHAT_CONFIG", config.as_str()), ("CHAT_USER", "fromenv")];
    assert_eq!(logs_in_as(&[], &env), "fromenv");
    assert_eq!(
        logs_in_as(&["127.0.0.1", &port, "fromargs"], &env),
        "fromargs"
    );

    // The file's port is wrong; the environment's wins.
    let wrong = write_config(
        dir.path(),
        "wrong.toml",
        "server = \"127.0.0.1\"\nport = 1\nuser = \"fromfile\"\n",
    );
    let env = [
        ("CHAT_CONFIG", wrong.as_str()),
        ("CHAT_PORT", port.as_str()),
    ];
    assert_eq!(logs_in_as(&[], &env), "fromfile");

    // --config names the file too.
    assert_eq!(logs_in_as(&["--config", &config], &[]), "fromfile");
}

#[test]
fn host_port_username_host_username_and_bind() {
    let server = Server::start();
    let port = server.port().to_string();
    let host_port = format!("127.0.0.1:{port}");
    assert_eq!(logs_in_as(&[&host_port, "hostport"], &[]), "hostport");
    assert_eq!(
        logs_in_as(&["127.0.0.1", "hostonly"], &[("CHAT_PORT", &port)]),
        "hostonly"
    );
    assert_eq!(
        logs_in_as(&["--bind", "127.0.0.1:0", "localhost", &port, "bound"], &[]),
        "bound"
    );
    assert_eq!(
        logs_in_as(
            &["--bind", "localhost", &format!("localhost:{port}"), "named"],
            &[]
        ),
        "named"
    );
    assert_eq!(
        logs_in_as(
            &[],
            &[("CHAT_SERVER", &host_port), ("CHAT_USER", "fromenv")]
        ),
        "fromenv"
    );
    for args in [
        &[host_port.as_str(), "7000", "alice"][..],
        &["127.0.0.1", "port", "alice"],
        &["127.0.0.1:port", "alice"],
    ] {
        let (code, _, err) = run(args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {err}");
    }
    // A local address of the other family cannot reach the server.
    let (code, _, err) = run(&["--bind", "[::1]:0", &host_port, "alice"], &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--bind [::1]:0: no address of the same family"),
        "{err}"
    );
}

#[test]
fn help_shows_where_the_files_are() {
    let dir = temp_dir();
    let home = dir.path().to_str().unwrap();
    let (code, out, _) = run(
        &["--help"],
        &[
            ("HOME", home),
            ("XDG_CONFIG_HOME", home),
            ("CHAT_HISTORY", ""),
        ],
    );
    assert_eq!(code, Some(0));
    let help = out.join("\n");
    if cfg!(target_os = "linux") {
        let udpchat = dir.path().join("udpchat");
        for line in [
            format!("config directory  {}", udpchat.display()),
            format!(
                "known servers     {}",
                udpchat.join("known_servers").display()
            ),
        ] {
            assert!(help.contains(&line), "no {line:?} in\n{help}");
        }
    } else {
        assert!(help.contains("config directory  "), "{help}");
    }
    assert!(help.contains("--forget-server"), "{help}");
    assert!(help.contains("HOST[:PORT] USERNAME"), "{help}");
}

#[test]
fn bad_config_files_are_usage_errors() {
    let dir = temp_dir();
    for (text, needle) in [
        ("password = \"hunter2\"\n", "never read from a file"),
        ("sever = \"typo\"\n", "sever"),
        ("port = \"many\"\n", "port"),
        ("server_key = \"abc\"\n", "64 hex digits"),
        ("fallback = \"b.example.org\"\n", "fallback"),
        (
            "fallback = [\"b.example.org:notaport\"]\n",
            "fallback in the config file",
        ),
    ] {
        let config = write_config(dir.path(), "bad.toml", text);
        let (code, out, err) = run(
            &["127.0.0.1", "65015", "alice"],
            &[("CHAT_CONFIG", config.as_str())],
        );
        assert_eq!(code, Some(2), "{text}: {out:?} {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{text}: {err}"
        );
    }
    let missing = dir.path().join("missing.toml");
    let (code, _, err) = run(
        &["127.0.0.1", "65015", "alice"],
        &[("CHAT_CONFIG", missing.to_str().unwrap())],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn missing_settings_say_where_to_give_them() {
    let (code, _, err) = run(&[], &[]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("error: no server"), "{err}");
    let (code, _, err) = run(&["127.0.0.1"], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("CHAT_USER"), "{err}");
}
