import Foundation

/// Debian's Chromium, headless, as a person's browser: it runs the page's script, applies its
/// Content-Security-Policy and builds the DOM a person sees. Each call has a profile of its own.
public enum Browser {
    public static let executable = "/usr/bin/chromium"

    static func run(_ arguments: [String], sandbox: Sandbox) throws -> Shell.Output {
        let profile = try sandbox.directory("chromium-\(UUID().uuidString)")
        // Root (as CI runs) needs --no-sandbox; the rest keeps a headless run quiet and alike on every machine.
        let command = [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                       "--disable-extensions", "--disable-background-networking", "--hide-scrollbars", "--user-data-dir=\(profile.path)"] + arguments
        var environment = Shell.gitEnvironment
        environment["HOME"] = profile.path
        return try Shell.run(command, environment: environment)
    }

    /// The DOM after the page loaded and its script ran for `milliseconds` of the browser's (virtual) time.
    public static func dom(_ url: String, sandbox: Sandbox, milliseconds: Int = 1000) throws -> String {
        try run(["--virtual-time-budget=\(milliseconds)", "--dump-dom", url], sandbox: sandbox).stdout
    }

    /// A PNG of the page as a 1200-pixel-wide window shows it.
    public static func screenshot(_ url: String, to file: URL, sandbox: Sandbox, height: Int = 900) throws {
        _ = try run(["--window-size=1200,\(height)", "--virtual-time-budget=1000", "--screenshot=\(file.path)", url], sandbox: sandbox)
        guard FileManager.default.fileExists(atPath: file.path) else { throw TestError("chromium made no screenshot of \(url)") }
    }
}

extension Network {
    /// An IPv4 address of this machine that is not loopback: a client there is "another address" to a
    /// server listening on 0.0.0.0.
    public static func nonLoopbackAddress() throws -> String {
        let output = try Shell.run(["ip", "-4", "-o", "addr", "show", "scope", "global"]).stdout
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if let index = fields.firstIndex(of: "inet"), index + 1 < fields.count {
                return String(fields[index + 1].split(separator: "/")[0])
            }
        }
        throw TestError("this machine has no IPv4 address besides loopback (ip -4 addr): the test needs one to be another client")
    }
}
