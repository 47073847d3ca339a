using System.Globalization;
using System.Text;
using static EioSharp.Kv.EndToEnd.Tools;

namespace EioSharp.Kv.EndToEnd;

/// <summary>redis-benchmark, pipelining, inline commands, redis-cli --pipe.</summary>
public sealed class ThroughputTests
{
    [Fact]
    public void Redis_benchmark_completes_without_errors()
    {
        using var server = KvServerProcess.Start();
        var r = Run("redis-benchmark", ["-h", "127.0.0.1", "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-t", "set,get,incr,mset", "-n", "20000", "-q"],
            timeout: TimeSpan.FromSeconds(90));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Output}");
        var lines = r.Stdout.Split('\r', '\n').Where(l => l.Contains("requests per second", StringComparison.Ordinal)).ToList();
        foreach (string test in new[] { "SET:", "GET:", "INCR:", "MSET (10 keys):" })
        {
            Assert.True(lines.Any(l => l.StartsWith(test, StringComparison.Ordinal)), $"no '{test}' line in:\n{r.Output}");
        }

        Assert.DoesNotContain("error", r.Output, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("\"20000\"", Cli(server.Port, "GET", "counter:__rand_int__")); // every INCR counted once
    }

    [Fact]
    public void Redis_benchmark_default_test_list_completes_without_errors()
    {
        // Every test redis-benchmark runs by default (lists, sets, hashes, sorted sets, LRANGE...), 20,000 requests each.
        using var server = KvServerProcess.Start();
        var r = Run("redis-benchmark", ["-h", "127.0.0.1", "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-n", "20000", "-q"],
            timeout: TimeSpan.FromSeconds(400));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Output}");
        var lines = r.Stdout.Split('\r', '\n').Where(l => l.Contains("requests per second", StringComparison.Ordinal)).ToList();
        foreach (string test in new[] { "PING_INLINE:", "SET:", "GET:", "INCR:", "LPUSH:", "RPUSH:", "LPOP:", "RPOP:", "SADD:", "HSET:",
                     "SPOP:", "ZADD:", "ZPOPMIN:", "LRANGE_100", "LRANGE_600", "MSET (10 keys):" })
        {
            Assert.True(lines.Any(l => l.StartsWith(test, StringComparison.Ordinal)), $"no '{test}' line in:\n{r.Output}");
        }

        Assert.DoesNotContain("error", r.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void A_thousand_pipelined_commands_in_one_write_are_answered_in_order()
    {
        using var server = KvServerProcess.Start();
        using var c = new RespClient(server.Port);
        var batch = new MemoryStream();
        for (int i = 0; i < 1000; i++)
        {
            byte[] cmd = (i % 4) switch
            {
                0 => Resp("INCR", "pipe:counter"),
                1 => Resp("SET", $"pipe:{i}", $"v{i}"),
                2 => Resp("GET", $"pipe:{i - 1}"),
                _ => Resp("PING"),
            };
            batch.Write(cmd);
        }

        c.Send(batch.ToArray()); // one write
        int counter = 0;
        for (int i = 0; i < 1000; i++)
        {
            string expected = (i % 4) switch
            {
                0 => ":" + (++counter).ToString(CultureInfo.InvariantCulture),
                1 => "+OK",
                2 => $"$v{i - 1}",
                _ => "+PONG",
            };
            Assert.Equal(expected, c.ReadReply());
        }

        Assert.Equal("$250", c.Call("GET", "pipe:counter"));
    }

    [Fact]
    public void Inline_commands_work()
    {
        using var server = KvServerProcess.Start("--domains", "1");
        using var c = new RespClient(server.Port);
        c.Send("SET a b\r\n");
        Assert.Equal("+OK", c.ReadReply());
        c.Send("GET a\n"); // bare \n, as telnet users type
        Assert.Equal("$b", c.ReadReply());
        c.Send("SET q \"two words\\n\"\r\nGET q\r\n\r\nPING\r\n");
        Assert.Equal("+OK", c.ReadReply());
        Assert.Equal("$two words\n", c.ReadReply());
        Assert.Equal("+PONG", c.ReadReply());
        c.Send("get\r\n");
        Assert.Equal("-ERR wrong number of arguments for 'get' command", c.ReadReply());
        Assert.Equal("\"b\"", Cli(server.Port, "GET", "a"));
    }

    [Fact]
    public void Redis_cli_pipe_mode_loads_data()
    {
        using var server = KvServerProcess.Start("--domains", "1");
        var input = new StringBuilder();
        for (int i = 0; i < 5000; i++)
        {
            input.Append(Encoding.UTF8.GetString(Resp("SET", $"bulk:{i}", i.ToString(CultureInfo.InvariantCulture))));
        }

        var r = Run("redis-cli", ["-h", "127.0.0.1", "-p", server.Port.ToString(CultureInfo.InvariantCulture), "--pipe"], stdin: input.ToString());
        Assert.True(r.ExitCode == 0, r.Output);
        Assert.Contains("errors: 0, replies: 5000", r.Output);
        Assert.Equal("(integer) 5000", Cli(server.Port, "DBSIZE"));
        Assert.Equal("\"4321\"", Cli(server.Port, "GET", "bulk:4321"));
    }
}
