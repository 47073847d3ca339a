using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace EioSharp.Kv.EndToEnd;

/// <summary>Issue 13's defects: a hostile client or a failing machine must not kill, freeze or bloat the server. Each test
/// starts the server and attacks it, bounded in time and memory.</summary>
public class HostileClientTests(ITestOutputHelper output)
{
    private static byte[] Join(params byte[][] parts)
    {
        var all = new byte[parts.Sum(p => (long)p.Length)];
        long at = 0;
        foreach (byte[] p in parts)
        {
            Buffer.BlockCopy(p, 0, all, (int)at, p.Length);
            at += p.Length;
        }

        return all;
    }

    private static string Info(int port, string section)
    {
        using var c = new RespClient(port);
        return c.Call("INFO", section);
    }

    /// <summary>Defect 1: six pipelined MGETs of one 1 MB key repeated 2,100 times (12.6 GB of replies). Before: the store
    /// owner threw OutOfMemoryException, its supervisor gave up and the process exited 3.</summary>
    [Fact]
    public void A_reply_larger_than_memory_disconnects_that_client_only()
    {
        using var server = KvServerProcess.Start();
        using (var c = new RespClient(server.Port))
        {
            Assert.Equal("+OK", c.Call("SET", "big", new string('x', 1 << 20)));
        }

        string[] mget = ["MGET", .. Enumerable.Repeat("big", 2100)];
        byte[] one = RespCommand.Encode(mget);
        using (var attacker = new RespClient(server.Port, timeoutMs: 60_000))
        {
            attacker.Send(Join(one, one, one, one, one, one)); // and never reads
            string got = attacker.ReadToEnd(out bool closed);
            Assert.True(closed, "the server did not disconnect the client");
            Assert.Equal("", got); // nothing of the oversized batch was sent
        }

        Assert.False(server.HasExited, server.Log);
        using (var c = new RespClient(server.Port))
        {
            Assert.Equal("+PONG", c.Call("PING"));
            Assert.Equal(":1048576", c.Call("STRLEN", "big"));
            Assert.Equal("*[$nil,$nil]", c.Call("MGET", "nope", "nope2"));
        }

        Assert.Contains("client_output_buffer_limit_disconnections:1\r\n", Info(server.Port, "stats"));
        // The log line reaches the test through the server's stdout pipe, possibly after the INFO reply: wait for it.
        Assert.True(server.WaitForLog("scheduled to be closed ASAP for overcoming of output buffer limits", TimeSpan.FromSeconds(20)), server.Log);
        long peakMb = server.VmHwmKb() / 1024;
        output.WriteLine($"peak RSS {peakMb} MB");
        Assert.True(peakMb < 2048, $"peak RSS {peakMb} MB"); // the default limit: 513 MiB of pending replies per client

        // Under the limit, a large pipelined reply is delivered whole (streamed).
        using (var reader = new RespClient(server.Port, timeoutMs: 60_000))
        {
            string[] small = ["MGET", .. Enumerable.Repeat("big", 20)];
            byte[] hundred = RespCommand.Encode(small);
            reader.Send(Join(hundred, hundred));
            for (int i = 0; i < 2; i++)
            {
                string reply = reader.ReadReply();
                Assert.StartsWith("*[$xxxx", reply);
                Assert.Equal(2 + (20L * ((1 << 20) + 1)) + 19 + 1, reply.Length); // "*[", 20 x ("$" + 1 MB), 19 ",", "]"
            }

            Assert.Equal("+PONG", reader.Call("PING"));
        }

        Assert.Equal(0, server.Terminate());
    }

    /// <summary>Defect 1, with a configured limit: pipelined GETs whose replies add up past it disconnect the client, and
    /// the commands pipelined after the one that went over are not run (as Redis stops a client flagged CLOSE_ASAP).</summary>
    [Fact]
    public void Pipelined_replies_over_the_configured_limit_disconnect_and_stop_the_batch()
    {
        using var server = KvServerProcess.Start("--client-max-reply-size", "4mb");
        using (var c = new RespClient(server.Port))
        {
            Assert.Equal("+OK", c.Call("SET", "v", new string('y', 1 << 20)));
        }

        using (var attacker = new RespClient(server.Port, timeoutMs: 30_000))
        {
            var batch = new List<byte[]>();
            for (int i = 0; i < 8; i++)
            {
                batch.Add(RespCommand.Encode("GET", "v"));
            }

            batch.Add(RespCommand.Encode("SET", "after", "1"));
            attacker.Send(Join([.. batch]));
            attacker.ReadToEnd(out bool closed);
            Assert.True(closed);
        }

        using (var c = new RespClient(server.Port))
        {
            Assert.Equal(":0", c.Call("EXISTS", "after"));
        }

        Assert.Contains("client_output_buffer_limit_disconnections:1\r\n", Info(server.Port, "stats"));
    }

    /// <summary>Defect 2: a command of 1,000,000 arguments trickled in small pieces (about 1.4 KB per millisecond). Before:
    /// every read walked all the argument headers received so far (quadratic): the server spent its whole CPU re-parsing
    /// and other clients' PING waited. The measure is the server's CPU time (/proc/&lt;pid&gt;/stat) against the wall
    /// time of the trickle: linear parsing keeps it a small fraction. NOTE: against the server before the fix this test
    /// still passed here (2 cores, loaded: server CPU 3.1 s over a 31 s trickle, vs 1.4 s over 11 s after; PING max 1.2 s
    /// vs 0.3 s), so it is a bound, not yet a reproduction of the freeze; RespRequestReaderTests shows the linearity.</summary>
    [Fact]
    public void A_trickled_command_of_a_million_arguments_is_parsed_in_linear_time()
    {
        using var server = KvServerProcess.Start();
        const int Args = 1_000_000;
        var pingLatencies = new List<double>();
        using var attacker = new RespClient(server.Port, timeoutMs: 120_000);
        using var probe = new RespClient(server.Port, timeoutMs: 60_000);
        double cpuBefore = CpuSeconds(server.Pid);
        var sw = Stopwatch.StartNew();
        attacker.Send($"*{Args}\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n");
        var piece = new StringBuilder();
        int sends = 0;
        for (int i = 2; i < Args; i++)
        {
            piece.Append("$1\r\na\r\n");
            if (piece.Length >= 700 || i == Args - 1)
            {
                attacker.Send(piece.ToString()); // ~100 arguments per send, TCP_NODELAY
                piece.Clear();
                if (++sends % 2 == 0)
                {
                    Thread.Sleep(1); // trickle: the server gets many small reads
                }
            }

            if (i % 100_000 == 0)
            {
                var ping = Stopwatch.StartNew();
                Assert.Equal("+PONG", probe.Call("PING"));
                pingLatencies.Add(ping.Elapsed.TotalMilliseconds);
            }
        }

        Assert.Equal($":{Args - 2}", attacker.ReadReply());
        double wall = sw.Elapsed.TotalSeconds;
        double cpu = CpuSeconds(server.Pid) - cpuBefore;
        output.WriteLine($"1,000,000 arguments in {sends} sends over {wall:0.0} s; server CPU {cpu:0.00} s; PING during it: max {pingLatencies.Max():0} ms");
        Assert.True(cpu < 0.5 * wall, $"the server used {cpu:0.0} s of CPU during a {wall:0.0} s trickle");
        Assert.Equal($":{Args - 2}", probe.Call("LLEN", "l"));
        Assert.Equal("+PONG", probe.Call("PING"));
        Assert.False(server.HasExited);
    }

    // utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s).
    private static double CpuSeconds(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) +
                long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary>Defect 3: before AUTH, Redis's limits (10 arguments, 16 KiB bulks) with Redis's errors, then the
    /// connection is closed. Before: an unauthenticated client could make the server buffer 4 x 300 MB.</summary>
    [Fact]
    public void Before_auth_the_unauthenticated_limits_apply()
    {
        using var server = KvServerProcess.Start("--requirepass", "secret");
        long rssBefore = server.VmRssKb();
        for (int i = 0; i < 4; i++)
        {
            using var c = new RespClient(server.Port, timeoutMs: 10_000);
            c.Send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$300000000\r\n" + new string('a', 64 * 1024));
            string got = c.ReadToEnd(out bool closed);
            Assert.True(closed, got);
            Assert.Equal("-ERR Protocol error: unauthenticated bulk length\r\n", got);
        }

        using (var c = new RespClient(server.Port))
        {
            c.Send("*11\r\n");
            string got = c.ReadToEnd(out bool closed);
            Assert.True(closed);
            Assert.Equal("-ERR Protocol error: unauthenticated multibulk length\r\n", got);
        }

        Assert.True(server.VmRssKb() - rssBefore < 64 * 1024, $"VmRSS grew from {rssBefore} KiB to {server.VmRssKb()} KiB");

        // At the limits: answered (NOAUTH), not disconnected; after AUTH the ordinary limits apply.
        using (var c = new RespClient(server.Port))
        {
            Assert.StartsWith("-NOAUTH", c.Call(["ECHO", new string('e', 16384)]));
            Assert.StartsWith("-NOAUTH", c.Call(["DEL", "1", "2", "3", "4", "5", "6", "7", "8", "9"]));
            Assert.Equal("+OK", c.Call("AUTH", "secret"));
            Assert.Equal("+OK", c.Call("SET", "big", new string('b', 100_000)));
            Assert.Equal(":0", c.Call(["DEL", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"]));
        }
    }

    /// <summary>Defect 6: a large SET peaks at about twice the value (it was 5.6x: a read buffer doubled to its size and
    /// kept in the pool, a copy in the command, a copy in the store, the AOF buffer), and the buffers go back afterwards.</summary>
    [Fact]
    public void A_large_value_costs_about_twice_its_size_at_peak_and_buffers_shrink_after()
    {
        const int ValueMb = 100;
        using var server = KvServerProcess.Start("--auto-aof-rewrite-percentage", "0"); // no rewrite holding a snapshot of the value
        using var c = new RespClient(server.Port, timeoutMs: 120_000);
        Assert.Equal("+PONG", c.Call("PING"));
        long baseMb = server.VmRssKb() / 1024;
        long baseHwmMb = server.VmHwmKb() / 1024;

        byte[] value = new byte[ValueMb << 20];
        Array.Fill(value, (byte)'v');
        c.Send(Join(Encoding.ASCII.GetBytes($"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${value.Length}\r\n"), value, "\r\n"u8.ToArray()));
        Assert.Equal("+OK", c.ReadReply());
        long peakMb = server.VmHwmKb() / 1024;
        long afterSetMb = server.VmRssKb() / 1024;
        output.WriteLine($"RSS {baseMb} MB (peak {baseHwmMb}) before; peak {peakMb} MB during SET of {ValueMb} MB; {afterSetMb} MB after");
        Assert.True(peakMb - baseMb <= 2.3 * ValueMb, $"peak {peakMb} MB from {baseMb} MB for a {ValueMb} MB value");
        Assert.Equal($":{value.Length}", c.Call("STRLEN", "big"));

        // Kept: the value, once. The AOF buffer and any read buffer are given back.
        long keptMb = 0;
        bool shrunk = Poll.Until(() =>
        {
            c.Call("PING");
            keptMb = server.VmRssKb() / 1024;
            return keptMb - baseMb < 1.4 * ValueMb;
        }, TimeSpan.FromSeconds(15));
        output.WriteLine($"RSS {keptMb} MB with the value stored");
        Assert.True(shrunk, $"RSS {keptMb} MB with the {ValueMb} MB value stored, from {baseMb} MB before");

        // GET: the reply goes out without a second copy, and its buffer is given back too.
        c.SendCommand("GET", "big");
        Assert.Equal(value.Length + 1, c.ReadReply().Length);
        long getPeakMb = server.VmHwmKb() / 1024;
        output.WriteLine($"peak {getPeakMb} MB after GET");
        Assert.True(getPeakMb - baseMb <= 2.3 * ValueMb, $"peak {getPeakMb} MB from {baseMb} MB after GET of a {ValueMb} MB value");

        // The value is deleted: what the connection and the AOF buffer held must not stay.
        Assert.Equal(":1", c.Call("DEL", "big"));
        long afterDelMb = 0;
        bool released = Poll.Until(() =>
        {
            c.Call("PING"); // a few rounds, for the runtime to collect
            afterDelMb = server.VmRssKb() / 1024;
            return afterDelMb - baseMb < ValueMb / 2;
        }, TimeSpan.FromSeconds(15));
        output.WriteLine($"RSS {afterDelMb} MB after DEL");
        Assert.True(released, $"RSS {afterDelMb} MB after DEL, from {baseMb} MB before the {ValueMb} MB SET");
    }

    /// <summary>Defect 7: protected mode. Bound to 0.0.0.0 with no password, a client that does not come from the loopback
    /// interface gets Redis's -DENIED error and is disconnected; loopback clients are served. The non-loopback client is
    /// this machine's own address (e.g. eth0), so no traffic leaves the machine.</summary>
    [Fact]
    public void Protected_mode_refuses_non_loopback_clients_without_a_password()
    {
        IPAddress? local = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        if (local is null)
        {
            output.WriteLine("SKIPPED: this machine has no non-loopback IPv4 address to connect from; KvConnection.IsLoopback is covered below only.");
            return;
        }

        output.WriteLine($"non-loopback address: {local}");
        using (var server = KvServerProcess.StartBound("0.0.0.0"))
        {
            Assert.Equal("*[$protected-mode,$yes]", Call(IPAddress.Loopback, server.Port, "CONFIG", "GET", "protected-mode"));
            string denied = Exchange(local, server.Port, "PING");
            Assert.StartsWith("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.", denied);
            Assert.EndsWith("NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n<closed>", denied);
            Assert.Equal("+PONG", Call(IPAddress.Loopback, server.Port, "PING"));
            Assert.Contains("rejected_connections:1\r\n", Info(server.Port, "stats"));
        }

        using (var server = KvServerProcess.StartBound("0.0.0.0", "--protected-mode", "no"))
        {
            Assert.Equal("+PONG", Call(local, server.Port, "PING"));
        }

        using (var server = KvServerProcess.StartBound("0.0.0.0", "--requirepass", "pw"))
        {
            Assert.StartsWith("-NOAUTH", Call(local, server.Port, "PING"));
        }
    }

    private static string Call(IPAddress address, int port, params string[] args)
    {
        using var s = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 };
        s.Connect(address, port);
        s.Send(RespCommand.Encode(args));
        var buffer = new byte[64 * 1024];
        int n = s.Receive(buffer);
        string text = Encoding.Latin1.GetString(buffer, 0, n);
        if (text.StartsWith('*'))
        {
            // Small arrays of bulks only (CONFIG GET): render as RespClient does.
            string[] lines = text.Split("\r\n");
            var items = new List<string>();
            for (int i = 2; i < lines.Length; i += 2)
            {
                items.Add("$" + lines[i]);
            }

            return "*[" + string.Join(",", items) + "]";
        }

        return text.TrimEnd('\r', '\n');
    }

    // Sends a command and reads until the server closes (or 10 s); "<closed>" marks the close.
    private static string Exchange(IPAddress address, int port, params string[] args)
    {
        using var s = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 };
        s.Connect(address, port);
        s.Send(RespCommand.Encode(args));
        var all = new StringBuilder();
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = s.Receive(buffer);
                if (n == 0)
                {
                    return all + "<closed>";
                }

                all.Append(Encoding.Latin1.GetString(buffer, 0, n));
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return all.ToString();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return all + "<closed>";
        }
    }
}
