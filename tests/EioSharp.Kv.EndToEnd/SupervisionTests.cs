using System.Collections.Concurrent;
using System.Globalization;
using Xunit.Abstractions;

namespace EioSharp.Kv.EndToEnd;

/// <summary>The store owner runs under the supervisor <c>kv-store</c>: DEBUG CRASH-STORE crashes it, the supervisor
/// restarts it from the AOF, and service continues; beyond the restart intensity the server exits with status 3.</summary>
public sealed class SupervisionTests(ITestOutputHelper output)
{
    private const string NotAllowed = "-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", " +
        "you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

    private static readonly TimeSpan s_logWait = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData("own")]
    [InlineData("main")] // the supervisor then runs on the main connection domain
    public void Store_owner_crash_is_restarted_by_its_supervisor_and_service_continues(string storeDomain)
    {
        using var dir = new TempDir();
        var acked = new ConcurrentDictionary<string, string>();
        var errors = new ConcurrentQueue<string>();
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always", "--enable-debug-command", "yes", "--store-domain", storeDomain))
        {
            using var c = new RespClient(server.Port);
            for (int i = 0; i < 50; i++)
            {
                Assert.Equal("+OK", c.Call("SET", $"before:{i}", $"v{i}"));
            }

            Assert.Equal(":1", c.Call("INCR", "counter"));

            // Writers keep the queue busy across the crash: requests queued meanwhile are served by the new owner.
            using var stop = new ManualResetEventSlim(false);
            var writers = Enumerable.Range(0, 3).Select(w => new Thread(() =>
            {
                using var wc = new RespClient(server.Port);
                for (int i = 0; !stop.IsSet; i++)
                {
                    string key = $"during:{w}:{i}";
                    string reply = wc.Call("SET", key, i.ToString(CultureInfo.InvariantCulture));
                    if (reply == "+OK")
                    {
                        acked[key] = i.ToString(CultureInfo.InvariantCulture);
                    }
                    else
                    {
                        errors.Enqueue(reply);
                    }
                }
            })).ToList();
            writers.ForEach(t => t.Start());
            Thread.Sleep(200);

            Assert.Equal("+OK", c.Call("DEBUG", "CRASH-STORE"));
            Assert.True(server.WaitForLog("supervisor kv-store: restarting store", s_logWait), server.Log);
            Assert.True(server.WaitForLog("Store owner restarted (run 2): keyspace reloaded from the append-only file", s_logWait), server.Log);
            Assert.True(server.WaitForLog("supervisor kv-store: store started", s_logWait), server.Log);
            Thread.Sleep(200);
            stop.Set();
            writers.ForEach(t => t.Join());
            output.WriteLine($"{acked.Count} SETs acknowledged around the crash; errors: {string.Join("; ", errors)}");

            // An injected crash lands between rounds: no command is lost; while the new owner replays the AOF, commands
            // are refused with -LOADING as Redis does while loading (issue 13), and nothing else.
            Assert.All(errors, e => Assert.Equal("-LOADING Redis is loading the dataset in memory", e));
            Assert.NotEmpty(acked);
            for (int i = 0; i < 50; i++)
            {
                Assert.Equal($"$v{i}", c.Call("GET", $"before:{i}"));
            }

            Assert.Equal(":2", c.Call("INCR", "counter"));
            Assert.Equal("+OK", c.Call("SET", "after", "yes"));
            Assert.Equal("$yes", c.Call("GET", "after"));
            foreach (var (key, value) in acked)
            {
                Assert.Equal("$" + value, c.Call("GET", key));
            }

            Assert.Equal(0, server.Terminate());
            output.WriteLine(server.Log);
        }

        // Everything is in the AOF: a new process has it all.
        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            using var c = new RespClient(server.Port);
            for (int i = 0; i < 50; i++)
            {
                Assert.Equal($"$v{i}", c.Call("GET", $"before:{i}"));
            }

            Assert.Equal("$2", c.Call("GET", "counter"));
            Assert.Equal("$yes", c.Call("GET", "after"));
            foreach (var (key, value) in acked)
            {
                Assert.Equal("$" + value, c.Call("GET", key));
            }

            Assert.Equal(0, server.Terminate());
        }
    }

    [Fact]
    public void A_crash_inside_a_round_answers_its_commands_with_an_error_and_the_AOF_decides_what_happened()
    {
        using var dir = new TempDir();
        using (var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always", "--enable-debug-command", "yes"))
        {
            using var c = new RespClient(server.Port);
            Assert.Equal("+OK", c.Call("SET", "a", "1"));

            // Crash after applying in memory, before appending: not executed (the new owner reloads from the AOF).
            Assert.Equal("+OK", c.Call("DEBUG", "CRASH-STORE", "BEFORE-APPEND"));
            c.Send([.. Tools.Resp("SET", "b", "2"), .. Tools.Resp("GET", "a"), .. Tools.Resp("INCR", "n")]); // one request, one round
            const string NotExecuted = "-ERR store restarted before executing this command; it was not executed";
            Assert.Equal(NotExecuted, c.ReadReply());
            Assert.Equal(NotExecuted, c.ReadReply());
            Assert.Equal(NotExecuted, c.ReadReply());
            Assert.True(server.WaitForLog("Store owner restarted (run 2)", s_logWait), server.Log);
            Assert.Equal("$nil", c.Call("GET", "b"));
            Assert.Equal("$nil", c.Call("GET", "n"));
            Assert.Equal("$1", c.Call("GET", "a"));

            // Crash after appending (and fsyncing), before replying: the outcome is unknown to the client; the AOF has it.
            Assert.Equal("+OK", c.Call("DEBUG", "CRASH-STORE", "AFTER-APPEND"));
            Assert.Equal("-ERR store restarted while executing this command; its outcome is unknown", c.Call("SET", "c", "3"));
            Assert.True(server.WaitForLog("Store owner restarted (run 3)", s_logWait), server.Log);
            Assert.Equal("$3", c.Call("GET", "c"));
            Assert.Equal("-ERR syntax error", c.Call("DEBUG", "CRASH-STORE", "SOMETIME"));
            Assert.Equal(0, server.Terminate());
            output.WriteLine(server.Log);
        }

        using (var server = KvServerProcess.StartIn(dir.DataDir))
        {
            using var c = new RespClient(server.Port);
            Assert.Equal("*[$1,$nil,$3]", c.Call("MGET", "a", "b", "c"));
            Assert.Equal(0, server.Terminate());
        }
    }

    [Fact]
    public void Debug_is_refused_without_enable_debug_command()
    {
        using var server = KvServerProcess.Start();
        using var c = new RespClient(server.Port);
        Assert.Equal(NotAllowed, c.Call("DEBUG", "CRASH-STORE"));
        Assert.Equal(NotAllowed, c.Call("debug", "help"));
        Assert.Equal("+OK", c.Call("SET", "k", "v"));
        Assert.Equal("$v", c.Call("GET", "k"));
        Assert.DoesNotContain("supervisor", server.Log, StringComparison.Ordinal);
        Assert.Equal(0, server.Terminate());
    }

    [Fact]
    public void Debug_with_local_mode_is_allowed_from_loopback_and_checks_auth_and_arguments()
    {
        using var server = KvServerProcess.Start("--enable-debug-command", "local", "--requirepass", "secret");
        using var c = new RespClient(server.Port);
        Assert.Equal("-NOAUTH Authentication required.", c.Call("DEBUG", "CRASH-STORE"));
        Assert.Equal("+OK", c.Call("AUTH", "secret"));
        Assert.Equal("-ERR wrong number of arguments for 'debug' command", c.Call("DEBUG"));
        Assert.StartsWith("-ERR unknown subcommand or wrong number of arguments for 'nope'", c.Call("DEBUG", "nope"), StringComparison.Ordinal);
        Assert.StartsWith("*", c.Call("DEBUG", "HELP"), StringComparison.Ordinal);
        Assert.Equal("+OK", c.Call("DEBUG", "crash-store"));
        Assert.True(server.WaitForLog("supervisor kv-store: store started", s_logWait), server.Log);
        Assert.Equal("+OK", c.Call("SET", "k", "v"));
        Assert.Equal(0, server.Terminate());
    }

    [Fact]
    public void Crashing_the_store_too_often_stops_the_server_with_status_3()
    {
        using var dir = new TempDir();
        using var server = KvServerProcess.StartIn(dir.DataDir, "--appendfsync", "always", "--enable-debug-command", "yes");
        using (var c = new RespClient(server.Port))
        {
            Assert.Equal("+OK", c.Call("SET", "k", "v"));
            for (int crash = 1; crash <= 6; crash++)
            {
                string reply;
                try
                {
                    reply = c.Call("DEBUG", "CRASH-STORE");
                }
                catch (Exception e) when (e is EndOfStreamException or IOException or System.Net.Sockets.SocketException)
                {
                    break; // the server went down
                }

                Assert.Equal("+OK", reply);
                if (crash <= 5)
                {
                    // Wait for the restart, so each crash is a separate exit (not refused as "not running").
                    Assert.True(server.WaitForLog($"Store owner restarted (run {crash + 1})", s_logWait), server.Log);
                    Assert.True(WaitForCount(server, "supervisor kv-store: store started", crash), server.Log);
                }
            }
        }

        int? exit = server.WaitForExit(TimeSpan.FromSeconds(20));
        output.WriteLine(server.Log);
        Assert.Equal(3, exit);
        Assert.Contains("supervisor kv-store: restart intensity exceeded; shutting down", server.Log, StringComparison.Ordinal);
        Assert.Contains("FATAL: the store owner keeps crashing: Supervisor 'kv-store': more than 5 restart(s) within 10s", server.Log, StringComparison.Ordinal);

        // The data survived the crashes.
        using var again = KvServerProcess.StartIn(dir.DataDir);
        using var c2 = new RespClient(again.Port);
        Assert.Equal("$v", c2.Call("GET", "k"));
        Assert.Equal(0, again.Terminate());
    }

    private static bool WaitForCount(KvServerProcess server, string text, int count)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (sw.Elapsed < s_logWait)
        {
            if (server.Log.Split('\n').Count(l => l.Contains(text, StringComparison.Ordinal)) >= count)
            {
                return true;
            }

            Thread.Sleep(50);
        }

        return false;
    }
    [Fact]
    public void A_client_blocked_when_the_store_crashes_gets_the_restart_error_and_can_block_again()
    {
        // The owner's failed run answers its parked requests (FailRound): the error reaches the blocked connection
        // through its event queue (StoreRequest.SignalCompletion), the connection stays open and blocks again.
        using var dir = new TempDir();
        using var server = KvServerProcess.StartIn(dir.DataDir, "--enable-debug-command", "yes");
        using var blocked = new EioSharp.Kv.EndToEnd.Differential.RespConnection(server.Port);
        using var admin = new EioSharp.Kv.EndToEnd.Differential.RespConnection(server.Port);
        blocked.Send(EioSharp.Kv.EndToEnd.Differential.RespConnection.Encode(["BLPOP", "q", "0"]));
        WaitBlockedClients(admin, 1);
        Assert.Equal("OK", admin.Call("DEBUG", "CRASH-STORE").Text);
        Assert.True(server.WaitForLog("supervisor kv-store: store started", s_logWait), server.Log);
        Assert.Equal("-ERR store restarted before executing this command; it was not executed", blocked.Read().ToString());
        Assert.Equal("PONG", blocked.Call("PING").Text);
        blocked.Send(EioSharp.Kv.EndToEnd.Differential.RespConnection.Encode(["BLPOP", "q", "0"]));
        WaitBlockedClients(admin, 1);
        Assert.Equal(":1", admin.Call("LPUSH", "q", "x").ToString());
        Assert.Equal("*[$\"q\", $\"x\"]", blocked.Read().ToString());
    }

    private static void WaitBlockedClients(EioSharp.Kv.EndToEnd.Differential.RespConnection admin, int count)
    {
        var deadline = DateTime.UtcNow + s_logWait;
        while (DateTime.UtcNow < deadline)
        {
            string info = admin.Call("INFO", "clients").Text!;
            if (int.Parse(info.Split("blocked_clients:")[1].Split('\r')[0], CultureInfo.InvariantCulture) == count) return;
            Thread.Sleep(20);
        }
        Assert.Fail($"not {count} blocked client(s) after {s_logWait}");
    }
}
