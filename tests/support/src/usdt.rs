//! The USDT test program `tests/usdt/usdt_target` (C with `<sys/sdt.h>`
//! probes), built once per test binary with gcc and driven a line at a time.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

/// `tests/usdt/usdt_target` built once per run.
pub fn target() -> &'static Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../usdt");
        let src = src.display();
        let out = std::env::temp_dir().join(format!("skelgen_usdt_target_{}", std::process::id()));
        let result = Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&out)
            .arg(format!("{src}/usdt_target.c"))
            .arg(format!("{src}/usdt_sema.c"))
            .output();
        match result {
            Err(e) => Err(format!("cannot run gcc: {e}")),
            Ok(o) if !o.status.success() => Err(format!(
                "gcc could not build tests/usdt (is systemtap-sdt-dev installed for \
                 <sys/sdt.h>?):\n{}",
                String::from_utf8_lossy(&o.stderr)
            )),
            Ok(_) => Ok(out),
        }
    })
}

/// The running target program, driven a line at a time.
pub struct Target {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Target {
    /// Starts the program.
    pub fn spawn(path: &Path) -> Target {
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Target {
            child,
            stdin,
            stdout,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends one command, returns the answer line.
    pub fn send(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// Fires a probe (`zero`, `one`, `one2`, `three`, `seven`, `sema`).
    pub fn fire(&mut self, probe: &str) {
        assert_eq!(self.send(probe), "ok", "{probe}");
    }

    /// The semaphore's current value.
    pub fn semaphore(&mut self) -> u32 {
        self.send("semaphore").parse().unwrap()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
