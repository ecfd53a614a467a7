//! The .NET binding (bindings/dotnet) compiled with Mono's mcs as C# 7 and run on Mono and on a
//! .NET 8 runtime against the sandbox and the real mail stack (with ABI 2's cancellable token,
//! SASL and disconnect calls, registrations, the refresher and the log callback, a MessageSpec
//! with an umlaut subject and attachments sent over SMTP and read back, GraphToken); then its host
//! integration part (host-driven device code, events with a refresh and a needs-re-authorization,
//! refresher rounds and the background refresher, a host-owned store) with 4-second tokens. The
//! first Mono run stores a real tinyproxy with Basic auth as its proxy (SetProxy, GetProxy) and
//! does all of it through that proxy, whose log shows the emulator's requests and the tunnels to
//! IMAP, POP3 and SMTP.

use std::path::{Path, PathBuf};
use std::process::Command;

use mailconnect_tests::proxies::{binding_went_through_proxy, HttpProxy, HttpProxyOptions};
use mailconnect_tests::*;

/// The proxy's Basic auth; only unreserved characters, so the URL carries the password as written.
const PROXY_USER: &str = "mcdotnet";
const PROXY_PASSWORD: &str = "Dn-pr0xy-5e8a2c";

fn dotnet() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .unwrap();
    Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("dnv/net/runtime/.net/dotnet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dotnet_binding_runs_the_scenario_on_mono_and_dotnet8() {
    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let work = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/dotnet");
    let exe = work.path().join("Scenario.exe");
    run_ok(
        Command::new("mcs")
            .args(["-langversion:7", "-nologo", "-warnaserror"])
            .arg(format!("-out:{}", exe.display()))
            .arg(src.join("Mailconnect.cs"))
            .arg(src.join("tests/Scenario.cs")),
    );
    std::fs::copy(
        cdylib_dir().join("libmailconnect.so"),
        work.path().join("libmailconnect.so"),
    )
    .unwrap();
    std::fs::write(
        work.path().join("Scenario.runtimeconfig.json"),
        r#"{"runtimeOptions":{"tfm":"net8.0","rollForward":"LatestMajor","framework":{"name":"Microsoft.NETCore.App","version":"8.0.0"}}}"#,
    )
    .unwrap();
    // Every CONNECT port allowed: the emulator's and the mail stack's are not 443.
    let proxy = HttpProxy::start(HttpProxyOptions {
        basic_auth: Some((PROXY_USER.into(), PROXY_PASSWORD.into())),
        connect_ports: None,
    });
    let runs = [
        ("mono", "mono.db", false),
        ("dotnet8", "net8.db", false),
        ("mono", "mono-host.db", true),
        ("dotnet8", "net8-host.db", true),
    ];
    for (runtime, store, host) in runs {
        if host {
            // Tokens that need a refresh after 2 s, for the token_refreshed event.
            token_lifetime(&env.emulator, 4);
        }
        let mut args = binding_scenario_args(&env, &stack, &work.path().join(store));
        if host {
            args.push("host".into());
        }
        let mut cmd = if runtime == "mono" {
            let mut c = Command::new("mono");
            c.arg(&exe);
            c
        } else {
            let mut c = Command::new(dotnet());
            c.arg("exec")
                .arg("--runtimeconfig")
                .arg(work.path().join("Scenario.runtimeconfig.json"))
                .arg(&exe);
            c
        };
        cmd.args(&args).env("LD_LIBRARY_PATH", work.path());
        // The first Mono run through the proxy.
        let through_proxy = runtime == "mono" && !host;
        if through_proxy {
            cmd.env("MC_TEST_PROXY", proxy.url_with_credentials());
        }
        let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
            .await
            .unwrap();
        assert!(out.contains(" 0 failed"), "{runtime}:\n{out}");
        assert!(
            !out.contains(PROXY_PASSWORD),
            "the proxy password was printed"
        );
        if through_proxy {
            binding_went_through_proxy(&proxy, &env, &stack, &out, PROXY_PASSWORD);
        }
        let expected = if host {
            [
                "ok polling until connected (host-driven device code)",
                "ok events in order: connect_progress, state_changed, token_refreshed",
                "ok then needs_reauthorization and its state change, in order",
                "ok a truncating host gets MC-TOKEN-TRUNCATED",
                "ok RunRefresher counts the account that needs re-authorization",
                "ok RunRefresher refreshes through the host store",
                "ok the background refresher refreshed without a call",
            ]
            .as_slice()
        } else {
            [
                "ok CancellationToken cancels the connect",
                "ok RunRefresher reports the fresh account",
                "ok a cancelled Disconnect changes nothing",
                "ok the log callback received lines",
                "ok Registration, Registrations and RemoveRegistration",
                "ok StopRefresher stops it (it starts again)",
                "ok MessageSpec.ToJson",
                "ok reauthorization_due is EventKind.ReauthorizationDue with At and Code",
                "ok SendMessage over SMTP: transport smtp and a Message-ID",
                "ok the built message came back: umlaut subject, named recipient, both attachments' bytes",
                "ok a message without recipients throws MC_E_INVALID_ARGUMENT naming \"to\"",
                "ok GraphToken of a disconnected account throws MC_E_STATE",
            ]
            .as_slice()
        };
        for line in expected {
            assert!(
                out.contains(line),
                "{runtime} (host part: {host}): {line}\n{out}"
            );
        }
    }
}

#[test]
fn the_nuget_package_has_the_runtimes_layout() {
    let out = tempfile::tempdir().unwrap();
    let lib = cdylib_dir().join("libmailconnect.so");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/dotnet/pack.py");
    let printed = run_ok(
        Command::new("python3")
            .arg(script)
            .arg(out.path())
            .arg("--native")
            .arg(format!("linux-x64={}", lib.display())),
    );
    let nupkg = printed.lines().last().unwrap().trim().to_string();
    let list = run_ok(Command::new("python3").args([
        "-c",
        "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
        &nupkg,
    ]));
    for entry in [
        "Mailconnect.nuspec",
        "lib/net471/Mailconnect.dll",
        "build/Mailconnect.targets",
        "runtimes/linux-x64/native/libmailconnect.so",
    ] {
        assert!(
            list.lines().any(|l| l == entry),
            "{entry} missing in:\n{list}"
        );
    }
}
