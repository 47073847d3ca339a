using System.Buffers;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>maxmemory-clients: its value syntax (Redis 7.0's memory-or-percent parsing), the limit it means, and
/// <see cref="KvClientRegistry.EvictClients"/> (largest evictable client first, NO-EVICT clients kept, evicted_clients).</summary>
public class ClientEvictionTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("", 0L)]
    [InlineData("kb", 0L)]
    [InlineData("10%", -10L)]
    [InlineData("0%", 0L)]
    [InlineData("100%", -100L)]
    [InlineData("1mb", 1L << 20)]
    [InlineData("1kB", 1024L)]
    [InlineData("5k", 5000L)]
    [InlineData("1g", 1_000_000_000L)]
    [InlineData("9223372036854775807", long.MaxValue)]
    [InlineData("18446744073709551615", -1L)] // memtoull's unsigned value taken as signed: 1%
    [InlineData("18446744073709551616", -1L)] // strtoull saturates
    [InlineData("12345678901234567890k", 4807115922877858896L)] // the multiplication wraps as in C
    public void Memory_or_percent_values_parse_as_redis_parses_them(string value, long expected) =>
        Assert.Equal(expected, KvConfigDirectives.ParseMemoryOrPercent(value, 100));

    [Theory]
    [InlineData("101%", "percentage argument must be less or equal to 100")]
    [InlineData("9223372036854775808", "percentage argument must be less or equal to 100")]
    [InlineData("-1", "argument must be a memory or percent value")]
    [InlineData("-1%", "argument must be a memory or percent value")]
    [InlineData("010%", "argument must be a memory or percent value")]
    [InlineData("+10%", "argument must be a memory or percent value")]
    [InlineData("1.5", "argument must be a memory or percent value")]
    [InlineData(" 5", "argument must be a memory or percent value")]
    [InlineData("%", "argument must be a memory or percent value")]
    [InlineData("100%%", "argument must be a memory or percent value")]
    public void Bad_values_get_redis_errors(string value, string error) =>
        Assert.Equal(error, Assert.Throws<KvConfigException>(() => KvConfigDirectives.ParseMemoryOrPercent(value, 100)).Message);

    [Fact]
    public void The_directive_shows_percentages_as_redis_does()
    {
        KvConfigDirective d = KvConfigDirectives.Find("maxmemory-clients")!;
        var c = d.Set(new KvServerConfig(), ["7%"]);
        Assert.Equal("7%", d.Get(c));
        Assert.Equal([["7%"]], d.LinesFor(c));
        c = d.Set(c, ["2mb"]);
        Assert.Equal("2097152", d.Get(c));
        Assert.Equal([["2mb"]], d.LinesFor(c));
        Assert.Equal("0", d.Get(new KvServerConfig()));
        Assert.Equal(KvDirectiveFlags.None, d.Flags);
    }

    [Fact]
    public void The_limit_is_off_at_zero_relative_to_maxmemory_and_never_under_128_kb()
    {
        Assert.Equal(0, new KvServerConfig().ClientEvictionLimit);
        Assert.Equal(0, new KvServerConfig { MaxMemoryClients = -10 }.ClientEvictionLimit); // no maxmemory: no limit
        Assert.Equal(1L << 20, new KvServerConfig { MaxMemoryClients = -10, MaxMemory = 10L << 20 }.ClientEvictionLimit);
        Assert.Equal(128 * 1024, new KvServerConfig { MaxMemoryClients = 1000 }.ClientEvictionLimit);
        Assert.Equal(5L << 20, new KvServerConfig { MaxMemoryClients = 5L << 20 }.ClientEvictionLimit);
    }

    private sealed class Client
    {
        public Client(KvClientRegistry registry, long id, KvLiveConfig live, KvServerStats stats, long memory, bool noEvict = false)
        {
            State = new KvConnectionState(id, live, stats);
            Entry = new KvClientEntry(State, 0, () => Killed = true);
            registry.Add(Entry);
            if (noEvict)
            {
                var buffer = new ArrayBufferWriter<byte>();
                State.Process(KvCommand.Create("CLIENT", "NO-EVICT", "on"), new RespWriter(buffer), 1000);
                Assert.Equal("+OK\r\n", Resp.Text(buffer.WrittenSpan));
            }
            State.ReportQueryBuffer(0, memory - KvConnectionState.ClientStateBytes, 0);
        }

        public KvConnectionState State { get; }

        public KvClientEntry Entry { get; }

        public bool Killed { get; private set; }
    }

    [Fact]
    public void The_largest_evictable_clients_go_until_client_memory_is_under_the_limit()
    {
        var stats = new KvServerStats();
        var live = new KvLiveConfig(new KvServerConfig());
        var registry = new KvClientRegistry();
        var logged = new List<string>();
        registry.Log = logged.Add;
        var small = new Client(registry, 1, live, stats, 20_000);
        var keep = new Client(registry, 2, live, stats, 600_000, noEvict: true);
        var mid = new Client(registry, 3, live, stats, 300_000);
        var big = new Client(registry, 4, live, stats, 900_000);
        Assert.Equal(1_820_000, stats.ClientMemoryBytes);
        Assert.False(big.Killed); // maxmemory-clients 0: nothing happens

        // 1 MB: the big client goes (1,820,000 - 900,000 = 920,000 < 1 MiB); the others stay.
        Assert.Null(live.TrySet([("maxmemory-clients", "1mb")]));
        Assert.Equal(1, registry.EvictClients(live.Current, stats));
        Assert.True(big.Killed);
        Assert.False(mid.Killed || small.Killed || keep.Killed);
        Assert.Equal(1, stats.EvictedClients);
        Assert.StartsWith("Evicting client: id=4 ", logged.Single(), StringComparison.Ordinal);

        // The killed client is counted as gone while its connection closes: a second pass evicts nobody.
        Assert.Equal(0, registry.EvictClients(live.Current, stats));

        // 128 KB (the floor): every evictable client goes, the NO-EVICT one stays; Redis's warning is logged.
        Assert.Null(live.TrySet([("maxmemory-clients", "1")]));
        Assert.Equal(2, registry.EvictClients(live.Current, stats));
        Assert.True(mid.Killed && small.Killed);
        Assert.False(keep.Killed);
        Assert.Equal(3, stats.EvictedClients);
        Assert.Equal("Over client maxmemory after evicting all evictable clients", logged[^1]);

        stats.ResetStats();
        Assert.Equal(0, stats.EvictedClients);
    }

    [Fact]
    public void A_client_whose_memory_grows_over_the_limit_is_evicted_as_it_reports_it()
    {
        var stats = new KvServerStats();
        var live = new KvLiveConfig(new KvServerConfig { MaxMemory = 100L << 20, MaxMemoryClients = -1 }); // 1% of 100 MB
        var registry = new KvClientRegistry();
        var small = new Client(registry, 1, live, stats, 20_000);
        var growing = new Client(registry, 2, live, stats, 20_000);
        Assert.False(growing.Killed);
        growing.State.ReportQueryBuffer(0, 16_384, 0, receivingBytes: 2_000_000); // a 2 MB argument being received
        Assert.True(growing.Killed);
        Assert.False(small.Killed);
        Assert.Equal(1, stats.EvictedClients);
    }
}
