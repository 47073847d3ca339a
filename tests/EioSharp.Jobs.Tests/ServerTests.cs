using System.Net.Sockets;

namespace EioSharp.Jobs.Tests;

/// <summary>End-to-end tests against an in-process server. One collection: they burn CPU, so they do not run in parallel.</summary>
[Collection("server")]
public class ServerTests
{
    private const string Fib35 = "9227465";
    private const string Fib36 = "14930352";
    private const string Fib38 = "39088169";

    [Theory]
    [InlineData("Pool")]
    [InlineData("Inline")]
    [InlineData("ThreadPool")]
    public void Every_request_form_end_to_end(string mode)
    {
        using var server = TestServer.Start(new JobsOptions { Mode = Enum.Parse<JobsMode>(mode), Workers = 1 });
        using var c = server.Connect();
        Assert.Equal("Result: 55", c.Ask("10"));
        Assert.Equal("Result: 0", c.Ask("0"));
        Assert.Equal("Result: 832040", c.Ask("30")); // heavy: pool / thread pool / inline
        Assert.Equal("Result: 7540113804746346429", c.Ask("92"));
        Assert.Equal("Error: Invalid number", c.Ask("93"));
        Assert.Equal("Error: Invalid number", c.Ask("-5"));
        Assert.Equal("Error: Invalid number", c.Ask("abc"));
        Assert.Equal("Error: Invalid number", c.Ask("99999999999999999999"));
        Assert.Equal("Error: Invalid number", c.Ask($"{new string('i', 65)} FIB 3"));
        Assert.Equal("PONG", c.Ask("PING"));
        Assert.Equal("p1 PONG", c.Ask("p1 PING"));
        Assert.Equal("t OK 55", c.Ask("t FIB 10"));
        Assert.Equal("t OK 2178309", c.Ask("t FIB 32"));
        Assert.Equal("t OK 165580141", c.Ask("t FIB 41"));
        Assert.Equal("t OK 7540113804746346429", c.Ask("t FIB 92"));
        Assert.StartsWith("t ERR n must be at most 92", c.Ask("t FIB 93"));
        Assert.Equal("t ERR Invalid number", c.Ask("t FIB -1"));
        Assert.Equal("t ERR Invalid number", c.Ask("t FIB x"));
        Assert.StartsWith("t ERR unknown command", c.Ask("t FROB 1"));
        Assert.Equal("Result: 1", c.Ask("\r\n\n1\r")); // blank lines are skipped, CRLF accepted

        var stats = c.Ask("STATS");
        Assert.Matches(@"^STATS completed=\d+ heavy=\d+ busy=0 errors=\d+ lag_p50_us=\d+ lag_p99_us=\d+ lag_max_us=\d+$", stats);
        Assert.Contains("errors=9 ", stats);
        Assert.StartsWith("STATS completed=", c.Ask("STATS RESET"));
        Assert.Contains("errors=9 ", c.Ask("STATS")); // RESET restarts only the loop-lag window
        Assert.Empty(server.Warnings);
    }

    [Theory]
    [InlineData("Pool")]
    [InlineData("Inline")]
    [InlineData("ThreadPool")]
    public void Replies_to_requests_sent_before_a_half_close_are_all_written(string mode)
    {
        // Regression: `echo 30 | nc host 8080` got no reply (the reply writer was a daemon, cancelled at end of input).
        using var server = TestServer.Start(new JobsOptions { Mode = Enum.Parse<JobsMode>(mode), Workers = 1 });
        using var c = server.Connect();
        c.Send("30\n10\na FIB 32\nb FIB 5\nPING\n");
        c.ShutdownSend();
        var lines = c.ReadToEnd();
        Assert.Equal(["Result: 832040", "Result: 55", "PONG"], lines.Where(l => !l.Contains(' ') || l.StartsWith("Result", StringComparison.Ordinal)).ToArray());
        Assert.Contains("a OK 2178309", lines);
        Assert.Contains("b OK 5", lines);
        Assert.Equal(5, lines.Count);
    }

    [Fact]
    public void Too_long_line_is_answered_with_an_error_and_the_connection_closed()
    {
        using var server = TestServer.Start(new JobsOptions { Workers = 1 });
        using (var c = server.Connect())
        {
            Assert.Equal("Result: 1", c.Ask("1"));
            c.Send(new string('7', JobsProtocol.MaxLineLength + 1) + "\n");
            Assert.Equal($"Error: line longer than {JobsProtocol.MaxLineLength} bytes", c.ReadLine());
            Assert.Null(c.ReadLine());
        }

        using (var c = server.Connect())
        {
            // No newline at all: refused once the limit is passed, without buffering the rest.
            c.Send(new string('7', 10_000));
            Assert.Equal($"Error: line longer than {JobsProtocol.MaxLineLength} bytes", c.ReadLine());
        }

        using (var c = server.Connect())
        {
            Assert.Equal("Result: 55", c.Ask(new string(' ', JobsProtocol.MaxLineLength - 2) + "10"));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Overload_is_answered_busy_and_no_request_is_lost(int queue)
    {
        using var server = TestServer.Start(new JobsOptions { Mode = JobsMode.Pool, Workers = 1, Queue = queue });
        const int connections = 3, perConnection = 12;
        var clients = Enumerable.Range(0, connections).Select(_ => server.Connect()).ToArray();
        try
        {
            for (int k = 0; k < connections; k++)
            {
                clients[k].SendLines(Enumerable.Range(0, perConnection).Select(i => $"c{k}-{i} FIB 35"));
            }

            var replies = new List<string>();
            for (int k = 0; k < connections; k++)
            {
                for (int i = 0; i < perConnection; i++)
                {
                    replies.Add(clients[k].ReadLine() ?? throw new EndOfStreamException());
                }
            }

            var ids = replies.Select(r => r.Split(' ')[0]).ToList();
            Assert.Equal(connections * perConnection, ids.Distinct().Count());
            Assert.All(replies, r => Assert.Matches($@"^c\d+-\d+ (OK {Fib35}|BUSY)$", r));
            int busy = replies.Count(r => r.EndsWith(" BUSY", StringComparison.Ordinal));
            Assert.InRange(busy, 1, connections * perConnection - 1);

            // Nothing more arrives: exactly one reply per id.
            clients[0].Send("end PING\n");
            Assert.Equal("end PONG", clients[0].ReadLine());
            Assert.Contains($" busy={busy} ", clients[0].Ask("STATS"));
        }
        finally
        {
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }

        Assert.Empty(server.Warnings);
    }

    [Theory]
    [InlineData("Pool")]
    [InlineData("ThreadPool")]
    public void Cheap_requests_are_answered_while_heavy_ones_run(string mode)
    {
        using var server = TestServer.Start(new JobsOptions { Mode = Enum.Parse<JobsMode>(mode), Workers = 1, Queue = 8 });
        using var c = server.Connect();
        c.SendLines(["h1 FIB 38", "h2 FIB 38", "h3 FIB 38", "c1 FIB 10", "c2 FIB 10", "c3 FIB 10", "c4 FIB 10", "c5 FIB 10", "p PING"]);
        var order = Enumerable.Range(0, 9).Select(_ => c.ReadLine() ?? throw new EndOfStreamException()).ToList();
        var heavy = order.Where(l => l.StartsWith('h')).ToList();
        var cheap = order.Where(l => !l.StartsWith('h')).ToList();
        Assert.All(heavy, l => Assert.EndsWith($" OK {Fib38}", l));
        Assert.Equal(["c1 OK 55", "c2 OK 55", "c3 OK 55", "c4 OK 55", "c5 OK 55", "p PONG"], cheap);

        // Arrival order, not wall-clock: every cheap reply came before the first heavy one.
        Assert.True(order.FindLastIndex(l => !l.StartsWith('h')) < order.FindIndex(l => l.StartsWith('h')), string.Join(" | ", order));
    }

    [Fact]
    public void Inline_mode_baseline_makes_cheap_requests_wait_behind_heavy_ones()
    {
        using var server = TestServer.Start(new JobsOptions { Mode = JobsMode.Inline });
        using var c = server.Connect();
        c.SendLines(["h1 FIB 32", "c1 FIB 10", "p PING"]);
        Assert.Equal<string>(["h1 OK 2178309", "c1 OK 55", "p PONG"], Enumerable.Range(0, 3).Select(_ => c.ReadLine()!).ToArray());
    }

    [Fact]
    public void Graceful_stop_answers_requests_in_flight_then_closes_and_stops_listening()
    {
        var server = TestServer.Start(new JobsOptions { Mode = JobsMode.Pool, Workers = 1 });
        using var busy = server.Connect();
        using var idle = server.Connect();
        busy.SendLines(["h FIB 36", "p PING"]);
        Assert.Equal("p PONG", busy.ReadLine()); // both lines were read; h is running or queued
        Assert.Equal("PONG", idle.Ask("PING"));

        Assert.True(server.Stop(TimeSpan.FromSeconds(20)), "RunAsync did not return");
        Assert.Equal([$"h OK {Fib36}"], busy.ReadToEnd());
        Assert.Empty(idle.ReadToEnd());
        Assert.Contains("EioSharp.Jobs stopped.", server.Log);
        Assert.Empty(server.Warnings);
        Assert.Throws<SocketException>(() => server.Connect().Dispose());
    }

    [Fact]
    public void Stop_grace_period_bounds_the_wait_for_requests_in_flight()
    {
        var server = TestServer.Start(new JobsOptions { Mode = JobsMode.Pool, Workers = 1, StopGrace = TimeSpan.FromMilliseconds(50) });
        using var c = server.Connect();
        c.SendLines(["h1 FIB 38", "h2 FIB 38", "h3 FIB 38", "p PING"]);
        Assert.Equal("p PONG", c.ReadLine());
        Assert.True(server.Stop(TimeSpan.FromSeconds(20)), "RunAsync did not return");
        Assert.True(c.ReadToEnd().Count < 3); // cancelled: the queued jobs were never run
        Assert.Contains(server.Log, l => l.Contains("grace period over", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Pool")]
    [InlineData("ThreadPool")]
    [InlineData("Inline")]
    public void Client_vanishing_mid_flight_does_not_hurt_the_server(string mode)
    {
        using var server = TestServer.Start(new JobsOptions { Mode = Enum.Parse<JobsMode>(mode), Workers = 1, Queue = 2 });
        for (int round = 0; round < 3; round++)
        {
            var c = server.Connect();
            c.SendLines(["h1 FIB 35", "h2 FIB 35", "h3 FIB 35", "c FIB 10", "30"]);
            if (round == 1)
            {
                Assert.NotNull(c.ReadLine());
            }

            if (round == 2)
            {
                c.ShutdownSend();
                c.Dispose(); // orderly close while replies are pending
            }
            else
            {
                c.Abort(); // reset
            }
        }

        using var d = server.Connect();
        Assert.Equal("PONG", d.Ask("PING"));

        // Jobs of a client that closed in order still run (the server learns it is gone only when a write fails), so the
        // pool may still be full for a while (up to three FIB 35 jobs: seconds on a loaded machine): BUSY is a fine answer,
        // anything else is not.
        string reply;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((reply = d.Ask("x FIB 35")) == "x BUSY" && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(10);
        }

        Assert.Equal($"x OK {Fib35}", reply);
        Assert.True(server.Stop(TimeSpan.FromSeconds(20)));
        Assert.Empty(server.Warnings);
    }
}
