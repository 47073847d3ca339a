using System.Buffers;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>A subscriber that keeps what is pushed to it.</summary>
internal sealed class ListSubscriber(KvConnectionState state) : KvSubscriber
{
    public List<string> Messages { get; } = [];

    public override int Protocol => state.Protocol;

    public override void Push(byte[] message)
    {
        lock (Messages) Messages.Add(Encoding.UTF8.GetString(message));
    }
}

/// <summary>One client connection (<see cref="KvConnectionState"/>) in front of a shared store, as the server runs it:
/// connection commands answered here, store commands executed with the connection's session.</summary>
internal sealed class ClientHarness
{
    public ClientHarness(KvStore store, KvPubSub pubSub, AofListSink aof, Func<long> now, long id = 1)
    {
        Store = store;
        Aof = aof;
        Now = now;
        State = new KvConnectionState(id, new KvServerConfig(), new KvServerStats(), pubSub);
        State.SubscriberFactory = s => Subscriber = new ListSubscriber(s);
    }

    public KvStore Store { get; }
    public AofListSink Aof { get; }
    public Func<long> Now { get; }
    public KvConnectionState State { get; }
    public ListSubscriber? Subscriber { get; private set; }

    public string Run(params string[] args)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var command = KvCommand.Create(args);
        var writer = new RespWriter(buffer, State.Protocol);
        if (State.Process(command, writer, Now()) == KvDispatch.Store)
        {
            Store.Execute(State.Session, command, Now(), new RespWriter(buffer, State.Protocol), Aof);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}

/// <summary>Two clients and a store with a settable clock.</summary>
internal sealed class TwoClients
{
    public TwoClients()
    {
        A = new ClientHarness(Store, PubSub, Aof, () => Now, 1);
        B = new ClientHarness(Store, PubSub, Aof, () => Now, 2);
        Store.PubSub = PubSub;
    }

    public long Now { get; set; } = 1_700_000_000_000;
    public KvStore Store { get; } = new(random: new Random(1));
    public KvPubSub PubSub { get; } = new();
    public AofListSink Aof { get; } = new();
    public ClientHarness A { get; }
    public ClientHarness B { get; }
}

public sealed class TransactionTests
{
    private const string Queued = "+QUEUED\r\n";
    private const string Aborted = "*-1\r\n";

    [Fact]
    public void Commands_are_queued_and_run_by_exec_in_order()
    {
        var t = new TwoClients();
        Assert.Equal("+OK\r\n", t.A.Run("MULTI"));
        Assert.Equal(Queued, t.A.Run("SET", "a", "1"));
        Assert.Equal(Queued, t.A.Run("INCR", "a"));
        Assert.Equal(Queued, t.A.Run("PING"));
        Assert.Equal("$-1\r\n", t.B.Run("GET", "a")); // nothing applied before EXEC
        Assert.Equal("*3\r\n+OK\r\n:2\r\n+PONG\r\n", t.A.Run("EXEC"));
        Assert.Equal("$1\r\n2\r\n", t.B.Run("GET", "a"));
    }

    [Theory]
    [InlineData("GET")] // arity
    [InlineData("NOSUCHCOMMAND", "x")] // unknown command
    public void A_command_rejected_while_queuing_aborts_the_whole_transaction(params string[] bad)
    {
        var t = new TwoClients();
        t.A.Run("MULTI");
        Assert.Equal(Queued, t.A.Run("SET", "b", "1"));
        Assert.StartsWith("-ERR", t.A.Run(bad));
        Assert.Equal(Queued, t.A.Run("SET", "c", "1"));
        Assert.Equal("-EXECABORT Transaction discarded because of previous errors.\r\n", t.A.Run("EXEC"));
        Assert.Equal("*0\r\n", t.A.Run("KEYS", "*"));
        Assert.Empty(t.Aof.Commands);
        Assert.Equal("-ERR EXEC without MULTI\r\n", t.A.Run("EXEC"));
    }

    [Fact]
    public void A_runtime_error_is_returned_in_its_slot_and_the_others_apply()
    {
        var t = new TwoClients();
        t.A.Run("MULTI");
        t.A.Run("SET", "a", "x");
        t.A.Run("INCR", "a");
        t.A.Run("SET", "c", "1", "BADOPTION");
        t.A.Run("SET", "d", "1");
        Assert.Equal("*4\r\n+OK\r\n-ERR value is not an integer or out of range\r\n-ERR syntax error\r\n+OK\r\n", t.A.Run("EXEC"));
        Assert.Equal("$1\r\n1\r\n", t.A.Run("GET", "d"));
    }

    [Fact]
    public void Control_command_errors_match_redis()
    {
        var t = new TwoClients();
        Assert.Equal("-ERR EXEC without MULTI\r\n", t.A.Run("EXEC"));
        Assert.Equal("-ERR DISCARD without MULTI\r\n", t.A.Run("DISCARD"));
        t.A.Run("MULTI");
        Assert.Equal("-ERR MULTI calls can not be nested\r\n", t.A.Run("MULTI"));
        Assert.Equal("-ERR WATCH inside MULTI is not allowed\r\n", t.A.Run("WATCH", "x"));
        Assert.Equal(Queued, t.A.Run("SET", "x", "1"));
        Assert.Equal("*1\r\n+OK\r\n", t.A.Run("EXEC")); // those errors do not abort the transaction
        t.A.Run("MULTI");
        t.A.Run("SET", "x", "2");
        Assert.Equal("+OK\r\n", t.A.Run("DISCARD"));
        Assert.Equal("$1\r\n1\r\n", t.A.Run("GET", "x"));
    }

    public static TheoryData<string[], string[]> Conflicts() => new()
    {
        // setup (by B, before WATCH), the conflicting command (by B, after WATCH x)
        { ["SET", "x", "1"], ["SET", "x", "1"] },
        { [], ["SET", "x", "1"] },
        { ["SET", "x", "1"], ["DEL", "x"] },
        { ["SET", "x", "1"], ["EXPIRE", "x", "100"] },
        { ["SET", "y", "1"], ["RENAME", "y", "x"] },
        { ["SET", "x", "1"], ["RENAME", "x", "z"] },
        { ["SET", "x", "1"], ["FLUSHDB"] },
        { ["SET", "x", "1"], ["FLUSHALL"] },
        { ["SET", "x", "1"], ["SWAPDB", "0", "1"] },
        { ["SET", "x", "1"], ["MOVE", "x", "1"] },
        { ["SELECT", "1", "|", "SET", "x", "1"], ["SELECT", "1", "|", "MOVE", "x", "0"] },
        { ["SELECT", "1", "|", "SET", "x", "1"], ["SWAPDB", "0", "1"] },
    };

    private static void RunAll(ClientHarness c, string[] commands)
    {
        if (commands.Length == 0) return;
        var current = new List<string>();
        foreach (string a in commands.Append("|"))
        {
            if (a != "|")
            {
                current.Add(a);
                continue;
            }
            Assert.DoesNotContain("-ERR", c.Run([.. current]));
            current.Clear();
        }
    }

    [Theory]
    [MemberData(nameof(Conflicts))]
    public void A_change_to_a_watched_key_aborts_exec(string[] setup, string[] conflict)
    {
        var t = new TwoClients();
        RunAll(t.B, setup);
        t.B.Run("SELECT", "0");
        Assert.Equal("+OK\r\n", t.A.Run("WATCH", "x"));
        RunAll(t.B, conflict);
        t.A.Run("MULTI");
        t.A.Run("SET", "w", "1");
        Assert.Equal(Aborted, t.A.Run("EXEC"));
        Assert.Equal("$-1\r\n", t.A.Run("GET", "w"));
        Assert.Equal(0, t.Store.WatchedKeyCount); // EXEC unwatches
    }

    [Theory]
    [InlineData("FLUSHDB")] // FLUSHDB of a database without the watched key is no change (Redis 7.0)
    [InlineData("DEL", "x")] // deleting a missing key is no change
    [InlineData("SET", "other", "1")]
    [InlineData("SWAPDB", "0", "1")] // neither database has the key
    public void A_change_elsewhere_does_not_abort_exec(params string[] other)
    {
        var t = new TwoClients();
        t.A.Run("WATCH", "x");
        t.B.Run(other);
        t.A.Run("MULTI");
        t.A.Run("SET", "w", "1");
        Assert.Equal("*1\r\n+OK\r\n", t.A.Run("EXEC"));
    }

    [Fact]
    public void A_watched_key_that_expires_before_exec_aborts_it_and_one_already_expired_does_not()
    {
        var t = new TwoClients();
        t.B.Run("SET", "x", "1", "PX", "100");
        t.A.Run("WATCH", "x");
        t.Now += 1000;
        t.A.Run("MULTI");
        t.A.Run("PING");
        Assert.Equal(Aborted, t.A.Run("EXEC"));

        t.A.Run("WATCH", "x"); // x has expired (not yet removed): no change when it is found expired later
        t.A.Run("MULTI");
        t.A.Run("PING");
        Assert.Equal("*1\r\n+PONG\r\n", t.A.Run("EXEC"));
    }

    [Fact]
    public void Unwatch_discard_and_reset_forget_watches()
    {
        var t = new TwoClients();
        foreach (string[] forget in new[] { new[] { "UNWATCH" }, ["MULTI", "|", "DISCARD"], ["RESET"] })
        {
            t.A.Run("WATCH", "x");
            RunAll(t.A, forget);
            Assert.Equal(0, t.Store.WatchedKeyCount);
            t.B.Run("SET", "x", "2");
            t.A.Run("MULTI");
            t.A.Run("PING");
            Assert.Equal("*1\r\n+PONG\r\n", t.A.Run("EXEC"));
        }
    }

    [Fact]
    public void The_aof_gets_one_multi_exec_block_per_transaction_with_writes()
    {
        var t = new TwoClients();
        t.A.Run("MULTI");
        t.A.Run("GET", "a");
        Assert.Equal("*1\r\n$-1\r\n", t.A.Run("EXEC"));
        Assert.Empty(t.Aof.Commands); // read-only: nothing logged

        t.A.Run("MULTI");
        t.A.Run("SET", "a", "1");
        t.A.Run("INCR", "nope", "x"); // wrong arity: poisons the transaction
        Assert.StartsWith("-EXECABORT", t.A.Run("EXEC"));
        Assert.Empty(t.Aof.Commands);

        t.A.Run("MULTI");
        t.A.Run("SET", "a", "1");
        t.A.Run("SELECT", "2");
        t.A.Run("INCR", "a");
        t.A.Run("INCR", "a");
        t.A.Run("EXEC");
        Assert.Equal(["MULTI", "SELECT 0", "SET a 1", "SELECT 2", "INCR a", "INCR a", "EXEC"], t.Aof.Commands.Select(c => c.ToString()));
    }

    private static byte[] Aof(params string[][] commands) => [.. commands.SelectMany(c => Resp.Encode(c))];

    [Fact]
    public void Replay_applies_a_whole_transaction()
    {
        byte[] log = Aof(["SET", "x", "1"], ["MULTI"], ["INCR", "x"], ["SET", "y", "2"], ["EXEC"], ["INCR", "x"]);
        var store = new KvStore();
        AofLoadResult result = AofLoader.Load(log, store, 0);
        Assert.False(result.IsTruncated);
        Assert.True(store.TryGetValue("x"u8, 0, out byte[] x));
        Assert.Equal("3", Encoding.ASCII.GetString(x));
        Assert.True(store.TryGetValue("y"u8, 0, out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Replay_of_a_torn_transaction_drops_it_whole_and_truncates_at_its_multi(bool tornInsideACommand)
    {
        byte[] before = Aof(["SET", "x", "1"]);
        byte[] tail = Aof(["MULTI"], ["INCR", "x"], ["SET", "y", "2"]);
        if (tornInsideACommand) tail = [.. tail, .. Resp.Encode("INCR", "x").AsSpan(0, 7)];
        byte[] log = [.. before, .. tail];
        foreach (bool stream in new[] { false, true })
        {
            var store = new KvStore();
            AofLoadResult result = stream ? AofLoader.Load(new MemoryStream(log), store, 0) : AofLoader.Load(log, store, 0);
            Assert.True(result.IsTruncated);
            Assert.Equal(before.Length, result.ValidLength);
            Assert.Equal(1, result.CommandCount);
            Assert.True(store.TryGetValue("x"u8, 0, out byte[] x));
            Assert.Equal("1", Encoding.ASCII.GetString(x));
            Assert.False(store.TryGetValue("y"u8, 0, out _));
        }
    }

    [Fact]
    public void A_multi_without_its_exec_before_another_multi_is_corruption()
    {
        byte[] log = Aof(["MULTI"], ["SET", "x", "1"], ["MULTI"], ["SET", "y", "1"], ["EXEC"]);
        Assert.Throws<AofCorruptException>(() => AofLoader.Load(log, new KvStore(), 0));
        Assert.Throws<AofCorruptException>(() => AofLoader.Load(Aof(["SET", "x", "1"], ["EXEC"]), new KvStore(), 0));
    }

    [Fact]
    public void The_logged_transaction_replays_to_the_same_state()
    {
        var t = new TwoClients();
        t.A.Run("MULTI");
        t.A.Run("SET", "a", "1");
        t.A.Run("EXPIRE", "a", "100");
        t.A.Run("SELECT", "3");
        t.A.Run("SET", "b", "x");
        t.A.Run("EXEC");
        var buffer = new ArrayBufferWriter<byte>();
        foreach (KvCommand c in t.Aof.Commands) AofWriter.WriteCommand(buffer, c);
        var fresh = new KvStore();
        AofLoader.Load(buffer.WrittenSpan, fresh, t.Now);
        Assert.Equal(1, fresh.CountIn(0));
        Assert.Equal(1, fresh.CountIn(3));
        Assert.Equal(t.Store.GetExpireAt("a"u8, t.Now), fresh.GetExpireAt("a"u8, t.Now));
    }
}
