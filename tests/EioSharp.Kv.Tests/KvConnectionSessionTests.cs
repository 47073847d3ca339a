using System.Text;
using EioSharp.IO;
using static EioSharp.Kv.Tests.SessionTestRequests;

namespace EioSharp.Kv.Tests;

/// <summary>The connection session without a socket: bytes go in as chunks of an in-memory flow, the replies come out of
/// an in-memory sink, against a real store owner (on the same domain, no AOF). Every split of the input must give the
/// same replies, byte for byte.</summary>
public sealed class KvConnectionSessionTests
{
    private static readonly byte[] Crlf = "\r\n"u8.ToArray();

    /// <summary>Runs <paramref name="body"/> with a function that serves one connection (its chunks) to its end and
    /// returns the flow (replies in <see cref="ChunkFlow.Sink"/>).</summary>
    private static void WithServer(Func<Func<IEnumerable<byte[]>, Task<ChunkFlow>>, Task> body) =>
        WithServer((serve, _) => body(serve));

    /// <summary>As above, with the store owner (its round counters); <paramref name="inline"/> false: every batch goes
    /// through the queue (<see cref="StoreOwner.InlineRounds"/>).</summary>
    private static void WithServer(Func<Func<IEnumerable<byte[]>, Task<ChunkFlow>>, StoreOwner, Task> body, bool inline = true) =>
        SessionTestServer.Run(server => body(chunks => server.ServeAsync(new ChunkFlow(chunks)), server.Owner), inline);

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static string Text(ChunkFlow flow) => Encoding.UTF8.GetString(flow.Sink.ToArray());

    // Commands whose replies do not depend on what ran before (each run sets what it reads).
    private static readonly byte[] Script = Concat(
        Resp("SET", "k", "v1"),
        Resp("GET", "k"),
        Resp("SET", "c", "10"),
        Resp("INCR", "c"),
        Resp("PING"),
        Resp("ECHO", "hi there"),
        "SET inl \"a b\"\r\n"u8.ToArray(), // inline, quoted
        "GET inl\n"u8.ToArray(), // inline, LF only
        "\r\n"u8.ToArray(), // an empty inline line: skipped
        Resp("GET"), // wrong arity: only this command fails
        Resp("NOSUCH", "x"), // unknown command: only this one fails
        Resp("LPUSH", "k", "x"), // wrong type: only this one fails
        Resp("MGET", "k", "c", "missing"),
        Resp("DEL", "tmp"),
        Resp("RPUSH", "tmp", "a", "b"),
        Resp("LRANGE", "tmp", "0", "-1"),
        Resp("DEL", "tmp"));

    private const string ScriptReplies =
        "+OK\r\n$2\r\nv1\r\n+OK\r\n:11\r\n+PONG\r\n$8\r\nhi there\r\n+OK\r\n$3\r\na b\r\n" +
        "-ERR wrong number of arguments for 'get' command\r\n" +
        "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n" +
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n" +
        "*3\r\n$2\r\nv1\r\n$2\r\n11\r\n$-1\r\n" +
        ":0\r\n:2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n:1\r\n";

    [Fact]
    public void Pipelined_commands_are_answered_in_order_with_one_send_for_the_batch()
    {
        WithServer(async serve =>
        {
            var flow = await serve([Script]);
            Assert.Equal(ScriptReplies, Text(flow));
            Assert.Equal(1, flow.Sink.WriteCalls); // one read, one batch, one send
        });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Batches_run_inline_when_the_store_is_idle_on_the_connection_domain_and_through_the_queue_otherwise(bool inline)
    {
        WithServer(async (serve, owner) =>
        {
            long inlineBefore = owner.InlineRoundCount, queuedBefore = owner.QueuedRoundCount;
            foreach (int chunk in new[] { Script.Length, 17, 1 })
            {
                var flow = await serve(Script.Chunk(chunk));
                Assert.True(ScriptReplies == Text(flow), $"chunks of {chunk}: {Text(flow)}");
            }

            long inlineRounds = owner.InlineRoundCount - inlineBefore, queuedRounds = owner.QueuedRoundCount - queuedBefore;
            if (inline)
            {
                // One connection at a time and an idle store on this domain: no batch needs the queue.
                Assert.True(inlineRounds > 0, "no inline round");
                Assert.Equal(0, queuedRounds);
            }
            else
            {
                Assert.Equal(0, inlineRounds);
                Assert.True(queuedRounds > 0, "no queued round");
            }
        }, inline);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Concurrent_connections_keep_each_connections_order(bool inline)
    {
        // Several connections at once on one domain, with batches split at different places, by both paths (inline
        // rounds, queued rounds): each connection must see its own commands in order.
        WithServer(async (serve, owner) =>
        {
            const int connections = 8;
            var expected = new string[connections];
            var flows = new ChunkFlow[connections];
            var bodies = new List<Func<Task>>();
            for (int c = 0; c < connections; c++)
            {
                var input = new List<byte>();
                var reply = new StringBuilder();
                for (int i = 0; i < 50; i++)
                {
                    input.AddRange(Resp("INCR", $"n{c}"));
                    reply.Append(':').Append(i + 1).Append("\r\n");
                    input.AddRange(Resp("GET", $"n{c}"));
                    reply.Append('$').Append((i + 1).ToString().Length).Append("\r\n").Append(i + 1).Append("\r\n");
                }

                expected[c] = reply.ToString();
                byte[] bytes = [.. input];
                int chunk = 7 + 13 * c, index = c;
                bodies.Add(async () => flows[index] = await serve(bytes.Chunk(chunk)));
            }

            await Fiber.AllAsync(bodies);
            for (int c = 0; c < connections; c++)
            {
                Assert.True(expected[c] == Text(flows[c]), $"connection {c}: {Text(flows[c])}");
            }

            Assert.True(inline ? owner.InlineRoundCount > 0 : owner.InlineRoundCount == 0, $"inline rounds: {owner.InlineRoundCount}");
        }, inline);
    }

    [Fact]
    public void Every_split_of_the_input_in_two_gives_the_same_replies()
    {
        WithServer(async serve =>
        {
            for (int at = 1; at < Script.Length; at++)
            {
                var flow = await serve([Script[..at], Script[at..]]);
                Assert.True(ScriptReplies == Text(flow), $"split at byte {at}: {Text(flow)}");
                Assert.True(flow.Sink.WriteCalls <= 2, $"split at byte {at}: {flow.Sink.WriteCalls} sends for two reads");
            }
        });
    }

    [Fact]
    public void One_byte_per_read_gives_the_same_replies()
    {
        WithServer(async serve =>
        {
            var flow = await serve(Script.Select(b => new[] { b }));
            Assert.Equal(ScriptReplies, Text(flow));
        });
    }

    [Fact]
    public void A_protocol_error_answers_what_came_before_then_closes()
    {
        WithServer(async serve =>
        {
            byte[] input = Concat(Resp("SET", "p", "1"), Resp("GET", "p"), "*1\r\n$x\r\n"u8.ToArray(), Resp("PING"));
            var flow = await serve([input]);
            Assert.Equal("+OK\r\n$1\r\n1\r\n-ERR Protocol error: invalid bulk length\r\n", Text(flow));
        });
    }

    [Theory]
    [InlineData(20_000)] // under the large-argument threshold: assembled in the receive buffer
    [InlineData(100_000)] // over it: read straight into its own array
    public void Big_values_split_anywhere_are_stored_and_returned_whole(int size)
    {
        var value = new byte[size];
        new Random(size).NextBytes(value);
        for (int i = 0; i < value.Length; i++)
        {
            value[i] = (byte)('a' + (value[i] % 26));
        }

        string v = Encoding.ASCII.GetString(value);
        byte[] input = Concat(Resp("SET", "big", v), Resp("STRLEN", "big"), Resp("GET", "big"), Resp("PING"));
        string expected = $"+OK\r\n:{size}\r\n${size}\r\n{v}\r\n+PONG\r\n";
        WithServer(async serve =>
        {
            foreach (int chunk in new[] { input.Length, 1000, 4093, 32 * 1024 + 7, 7 })
            {
                var chunks = input.Chunk(chunk).ToArray();
                var flow = await serve(chunks);
                Assert.True(expected == Text(flow), $"chunks of {chunk}: {Text(flow).Length} chars, expected {expected.Length}");
            }

            foreach (int at in new[] { 1, 10, 15, 16, 17, size / 2, size + 14, size + 15, size + 16, input.Length - 1 })
            {
                var flow = await serve([input[..at], input[at..]]);
                Assert.True(expected == Text(flow), $"split at {at}");
            }
        });
    }

    [Fact]
    public void A_value_parsed_in_place_is_copied_into_the_keyspace_before_the_buffer_is_reused()
    {
        // Two batches in two reads: the second overwrites the receive buffer where the first value was.
        WithServer(async serve =>
        {
            var flow = await serve([Resp("SET", "reuse", "first-value"), Resp("SET", "other", "XXXXXXXXXXX"), Resp("GET", "reuse")]);
            Assert.Equal("+OK\r\n+OK\r\n$11\r\nfirst-value\r\n", Text(flow));
        });
    }

    [Fact]
    public void A_transaction_keeps_its_queued_commands_across_reads()
    {
        // MULTI keeps commands past their batch (a view over the receive buffer would be overwritten by the next read).
        WithServer(async serve =>
        {
            var flow = await serve([Resp("MULTI"), Resp("SET", "tx", "aaaa"), Resp("GET", "tx"), Concat(Resp("PING"), Resp("EXEC"))]);
            Assert.Equal("+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n$4\r\naaaa\r\n+PONG\r\n", Text(flow));
        });
    }
    [Fact]
    public void A_pipeline_larger_than_the_receive_buffer_is_one_batch_with_one_send()
    {
        // redis-benchmark -P 16 -d 1024: 16 SETs of 1 KB, 17 KB in one write; the 16 KiB buffer would cut the last one.
        string value = new('v', 1024);
        byte[][] sets = Enumerable.Range(0, 16).Select(i => Resp("SET", $"key:{i:D12}", value)).ToArray();
        byte[] pipeline = Concat(sets);
        Assert.True(pipeline.Length > KvConnectionSession.InitialReadBuffer);
        WithServer(async (serve, owner) =>
        {
            long roundsBefore = owner.InlineRoundCount + owner.QueuedRoundCount;
            var flow = await serve([pipeline, Resp("GET", "key:000000000015")]);
            Assert.Equal(string.Concat(Enumerable.Repeat("+OK\r\n", 16)) + $"$1024\r\n{value}\r\n", Text(flow));
            Assert.Equal(2, flow.Sink.WriteCalls); // the pipeline (one batch), then the GET
            Assert.Equal(2, owner.InlineRoundCount + owner.QueuedRoundCount - roundsBefore);
        });
    }

    [Fact]
    public void A_full_receive_buffer_that_ends_at_a_line_end_is_answered_before_reading_on()
    {
        // Exactly 16 KiB of complete commands: the client may wait for these replies before it sends more, so they go
        // out before the next read (the next chunk is there at once here: one send would mean it was waited for).
        byte[] head = Resp("SET", "a", "x");
        byte[] Set(int valueLength) => Resp("SET", "b", new string('y', valueLength));
        int length = 0;
        while (head.Length + Set(length).Length < KvConnectionSession.InitialReadBuffer) length++;
        byte[] first = Concat(head, Set(length));
        Assert.Equal(KvConnectionSession.InitialReadBuffer, first.Length);
        WithServer(async serve =>
        {
            var flow = await serve([first, Resp("GET", "a")]);
            Assert.Equal("+OK\r\n+OK\r\n$1\r\nx\r\n", Text(flow));
            Assert.Equal(2, flow.Sink.WriteCalls);
        });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_command_sent_after_a_blocked_reply_comes_through_the_read_the_wait_left_pending(bool inline)
    {
        // BLPOP blocks (its watcher starts a read that waits); LPUSH from another connection serves it; the next command
        // arrives only after the reply, through the read the wait left pending (awaited by the session's next read).
        SessionTestServer.Run(
            async server =>
            {
                var blocked = new QueueFlow();

                async Task UntilAsync(Func<bool> condition)
                {
                    for (int i = 0; !condition(); i++)
                    {
                        Assert.True(i < 100_000, "the condition never held");
                        await Fiber.YieldAsync();
                    }
                }

                await Fiber.BothAsync(
                    () => server.ServeAsync(blocked),
                    async () =>
                    {
                        for (int round = 0; round < 3; round++)
                        {
                            string before = Text(blocked.Sink);
                            blocked.Input.TryAdd(Resp("BLPOP", "q", "0"));
                            await UntilAsync(() => server.Stats.BlockedClients == 1);
                            var pusher = await server.ServeAsync(new ChunkFlow([Resp("LPUSH", "q", "v" + round)]), port: 40001);
                            Assert.Equal(":1\r\n", Text(pusher));
                            string popped = $"*2\r\n$1\r\nq\r\n$2\r\nv{round}\r\n";
                            await UntilAsync(() => Text(blocked.Sink) == before + popped);
                            blocked.Input.TryAdd(Resp("ECHO", "after" + round));
                            await UntilAsync(() => Text(blocked.Sink) == before + popped + $"$6\r\nafter{round}\r\n");
                        }

                        blocked.Input.TryAdd([]); // end of input: the session ends
                    });
            },
            inline);
    }

    [Fact]
    public void A_session_that_ends_by_itself_throws_no_exception()
    {
        // The client closes after its requests: the session's end, its kill daemon's end and the switch's are normal returns
        // (before: the switch cancelled the kill daemon, whose await threw a CancelledException that the fiber's end threw
        // again, at every connection's end). Counted on this domain's thread only (tests run in parallel).
        WithServer(async serve =>
        {
            await serve([Resp("PING")]); // the first session's one-time work (type loads, the JIT) out of the count
            int thread = Environment.CurrentManagedThreadId;
            var thrown = new List<string>();
            EventHandler<System.Runtime.ExceptionServices.FirstChanceExceptionEventArgs> onThrow = (_, e) =>
            {
                if (Environment.CurrentManagedThreadId == thread)
                {
                    lock (thrown)
                    {
                        thrown.Add(e.Exception.GetType().Name + ": " + e.Exception.Message);
                    }
                }
            };
            AppDomain.CurrentDomain.FirstChanceException += onThrow;
            ChunkFlow flow;
            try
            {
                flow = await serve([Resp("SET", "k", "v"), Resp("GET", "k")]);
            }
            finally
            {
                AppDomain.CurrentDomain.FirstChanceException -= onThrow;
            }

            Assert.Equal("+OK\r\n$1\r\nv\r\n", Text(flow));
            lock (thrown)
            {
                Assert.True(thrown.Count == 0, string.Join("; ", thrown));
            }
        });
    }

    private static string Text(BufferSink sink) => Encoding.UTF8.GetString(sink.ToArray());
}
