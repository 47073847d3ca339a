using System.Diagnostics;
using System.Text.Json;
using EioSharp.TestKit;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Fiber tracing and dumps through the KV server: <c>--trace FILE</c>, <c>DEBUG TRACE START|STOP</c>, <c>DEBUG FIBERS</c>.</summary>
public class TraceEndToEndTests
{
    private static string TempJson() => Path.Combine(Path.GetTempPath(), $"kv-trace-{Guid.NewGuid():N}.json");

    private static List<JsonElement> Events(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return [.. doc.RootElement.GetProperty("traceEvents").EnumerateArray().Select(e => e.Clone())];
    }

    private static string Ph(JsonElement e) => e.GetProperty("ph").GetString()!;

    /// <summary>Runs scripts/check-perfetto-json.py (the rules of Perfetto's JSON importer) on the file.</summary>
    private static void AssertPerfettoAccepts(string path)
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "scripts", "check-perfetto-json.py")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("scripts/check-perfetto-json.py not found above " + AppContext.BaseDirectory);
        }

        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(dir, "scripts", "check-perfetto-json.py"));
        psi.ArgumentList.Add(path);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "the checker did not finish");
        Assert.True(p.ExitCode == 0, output);
    }

    private static void AssertServerTrace(List<JsonElement> all, bool ioWait)
    {
        var tracks = all.Where(e => Ph(e) == "M" && e.GetProperty("name").GetString() == "thread_name")
            .Select(e => e.GetProperty("args").GetProperty("name").GetString()!).ToList();
        Assert.Contains(tracks, t => t.StartsWith("domain ", StringComparison.Ordinal) && t.EndsWith("(main)", StringComparison.Ordinal));
        Assert.Contains(all, e => Ph(e) == "X" && e.GetProperty("cat").GetString() == "fiber");
        // A connection fiber waiting for the client's next command (for a trace started at run time: some suspension).
        string wait = ioWait ? "suspended: io" : "suspended: ";
        Assert.Contains(all, e => Ph(e) == "b" && e.GetProperty("name").GetString()!.StartsWith(wait, StringComparison.Ordinal));
    }

    [Fact]
    public void Trace_flag_writes_a_trace_of_the_run_when_the_server_stops()
    {
        string path = TempJson();
        try
        {
            using (var server = KvServerProcess.Start("--trace", path))
            {
                using var c = new RespClient(server.Port);
                Assert.Equal("+OK", c.Call("SET", "k", "v"));
                Assert.Equal("$v", c.Call("GET", "k"));
                Assert.Equal("+PONG", c.Call("PING"));
                // Stay idle a moment so the connection's fiber really waits for the next command (a read that is
                // pending, not one that finds the next bytes or the close already there: ci39 saw a run, with the fast
                // NativeAOT server on portable, in which every read completed at once and no io wait was traced).
                Thread.Sleep(200);
                c.Dispose();
                Assert.Equal(0, server.Terminate());
            }

            var all = Events(path);
            AssertServerTrace(all, ioWait: true);
            AssertPerfettoAccepts(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Debug_trace_start_and_stop_record_between_them()
    {
        string path = TempJson();
        try
        {
            using var server = KvServerProcess.Start("--enable-debug-command", "yes");
            using var c = new RespClient(server.Port);
            Assert.Equal("-ERR no trace is running", c.Call("DEBUG", "TRACE", "STOP"));
            Assert.Equal("+OK", c.Call("DEBUG", "TRACE", "START", path));
            Assert.StartsWith("-ERR A trace session is already running", c.Call("DEBUG", "TRACE", "START", path + ".2"));
            // Stay idle a moment so the connection's fiber really waits for the next command while tracing (issue 15: with
            // the fast NativeAOT server every read of the SETs below may find its command already there, so the connection
            // runs from START to STOP without suspending, and STOP's own suspension, on the system thread that stops the
            // trace, may come after recording stopped). The run itself is a slice either way (EioTrace: a session opens
            // the runs in progress at its start).
            Thread.Sleep(200);
            for (int i = 0; i < 10; i++)
            {
                Assert.Equal("+OK", c.Call("SET", "k" + i, "v"));
            }

            Assert.Equal("$" + Path.GetFullPath(path), c.Call("DEBUG", "TRACE", "STOP"));
            Assert.Equal("-ERR no trace is running", c.Call("DEBUG", "TRACE", "STOP"));
            Assert.Equal("-ERR syntax error", c.Call("DEBUG", "TRACE", "BEGIN"));
            AssertServerTrace(Events(path), ioWait: false);
            AssertPerfettoAccepts(path);
            Assert.Equal(0, server.Terminate());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Debug_fibers_dumps_the_live_tree_as_text_and_json()
    {
        using var server = KvServerProcess.Start("--enable-debug-command", "yes");
        using var idle = new RespClient(server.Port); // a second connection: its fiber waits for a command
        Assert.Equal("+PONG", idle.Call("PING"));
        using var c = new RespClient(server.Port);
        string text = c.Call("DEBUG", "FIBERS");
        Assert.StartsWith("$", text);
        Assert.Matches(@"(?m)^domain \d+ \(main\): ", text[1..]);
        Assert.Matches(@"suspended on io", text); // the idle connection's fiber, with what it waits for

        string json = c.Call("DEBUG", "FIBERS", "JSON");
        using var doc = JsonDocument.Parse(json[1..]);
        var domains = doc.RootElement.GetProperty("domains").EnumerateArray().ToList();
        Assert.NotEmpty(domains);
        Assert.All(domains, d =>
        {
            Assert.Equal(JsonValueKind.Number, d.GetProperty("id").ValueKind);
            Assert.Equal(JsonValueKind.String, d.GetProperty("name").ValueKind);
            Assert.Equal(JsonValueKind.Array, d.GetProperty("switches").ValueKind);
        });
        Assert.Contains(domains, d => d.GetProperty("switches").GetArrayLength() > 0);
        Assert.Equal("-ERR syntax error", c.Call("DEBUG", "FIBERS", "XML"));
        Assert.Equal(0, server.Terminate());
    }
}
