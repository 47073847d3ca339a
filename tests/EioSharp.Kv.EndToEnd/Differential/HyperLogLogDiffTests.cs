using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>PFADD PFCOUNT PFMERGE PFDEBUG, differential against redis-server (see <see cref="DiffRunner"/>): the counts must be
/// equal and the stored HLL strings byte for byte the same (sparse and dense representations, the cached cardinality
/// in the header). Large PFADDs promote keys from sparse to dense; PFMERGE mixes both; strings that are not HLLs and
/// damaged headers take the WRONGTYPE/INVALIDOBJ paths.</summary>
public sealed class HyperLogLogDiffTests(DiffServers servers) : IClassFixture<DiffServers>
{
    public static TheoryData<int> SeedData() => [.. DiffRunner.Seeds(1, 2)];

    [Theory]
    [MemberData(nameof(SeedData))]
    public void HyperLogLog_matches_redis_including_the_stored_bytes(int seed)
    {
        DiffRunner.Run(servers, "hyperloglog", seed, 10_000, Next);
        // DiffRunner compares GET replies as decoded text; an HLL is binary, so compare the raw bytes as well.
        CompareRawStrings(servers.Redis.Port, servers.Kv.Port, $"hyperloglog: seed {seed} (replay: KV_DIFF_SEEDS={seed})");
    }

    /// <summary>A key from the shared pool (types and generic commands collide) or, a third of the time, one of three
    /// HLL keys that only this generator touches, so that some keys live long enough to turn dense.</summary>
    private static string AnyKey(DiffContext c) => c.Int(0, 3) == 0 ? HllKey(c) : c.Key();

    private static string HllKey(DiffContext c) => "hll" + c.Int(0, 3).ToString(CultureInfo.InvariantCulture);

    private static DiffCommand Next(DiffContext c)
    {
        string key = AnyKey(c);
        switch (c.Int(0, 30))
        {
            case 0 or 1:
                return BitmapDiffTests.Generic(c);
            case 2:
                return new[] { "SET", c.Key(), c.Value() };
            case 3 or 4 or 5 or 6 or 7 or 8:
                return PfAdd(c, key, c.Int(0, 6));
            case 9:
                return PfAdd(c, c.Chance(0.7) ? HllKey(c) : key, c.Int(20, 400)); // many at once: sparse keys grow and turn dense
            case 10 or 11 or 12 or 13:
                return new[] { "PFCOUNT", key };
            case 14 or 15:
                return new[] { "PFCOUNT", key, AnyKey(c), c.Chance(0.5) ? AnyKey(c) : "missing" };
            case 16 or 17 or 18:
                return c.Int(0, 3) switch
                {
                    0 => new[] { "PFMERGE", key },
                    1 => new[] { "PFMERGE", key, AnyKey(c) },
                    _ => new[] { "PFMERGE", key, AnyKey(c), AnyKey(c), "missing" },
                };
            case 19 or 20:
                return new[] { "GET", key };
            case 21:
                key = c.Key();
                // Damage the header: the magic, or the encoding byte (a sparse HLL claiming to be dense has the wrong
                // length; an unknown encoding is refused; a dense HLL read as sparse is corrupt).
                return c.Int(0, 3) switch
                {
                    0 => new[] { "SETRANGE", key, "0", "X" },
                    1 => new[] { "SETRANGE", key, "4", "\u0002" },
                    _ => new[] { "SETRANGE", key, "4", c.Pick("\u0000", "\u0001") },
                };
            case 22:
                return new[] { c.Pick("PFADD", "PFCOUNT", "PFMERGE") };
            case 23:
                return BitmapDiffTests.Hello(c);
            case 24:
                return c.Chance(0.5)
                    ? new[] { "STRLEN", key }
                    : new[] { "PFDEBUG", c.Pick("ENCODING", "DECODE", "TODENSE", "GETREG", "encoding", "FOO"), key };
            case 25:
                return new[] { "SELECT", c.Pick("0", "1") };
            default:
                return PfAdd(c, key, c.Int(1, 4));
        }
    }

    private static string[] PfAdd(DiffContext c, string key, int elements)
    {
        var args = new List<string>(elements + 2) { "PFADD", key };
        for (int i = 0; i < elements; i++)
        {
            // Mostly fresh elements; some repeat (no register changes); some are empty or binary-looking.
            args.Add(c.Int(0, 20) switch
            {
                0 => "",
                1 => "e" + c.Int(0, 50).ToString(CultureInfo.InvariantCulture),
                2 => new string('z', c.Int(1, 40)),
                _ => "e" + c.Int(0, 5_000_000).ToString(CultureInfo.InvariantCulture),
            });
        }
        return [.. args];
    }

    /// <summary>Compares the raw bytes of every string key in databases 0..2 (the ones the generator uses).</summary>
    private static void CompareRawStrings(int redisPort, int kvPort, string label)
    {
        using var r = new RawConnection(redisPort);
        using var k = new RawConnection(kvPort);
        var diffs = new List<string>();
        int compared = 0, dense = 0, sparse = 0;
        for (int db = 0; db < 3; db++)
        {
            string dbText = db.ToString(CultureInfo.InvariantCulture);
            r.Call("SELECT", dbText);
            k.Call("SELECT", dbText);
            foreach (string key in r.Keys())
            {
                byte[]? a = r.Call("GET", key), b = k.Call("GET", key);
                compared++;
                if (a is { Length: > 4 } && a.AsSpan(0, 4).SequenceEqual("HYLL"u8))
                {
                    if (a[4] == 0) dense++;
                    else sparse++;
                }
                if (a is null != b is null || (a is not null && !a.AsSpan().SequenceEqual(b)))
                {
                    diffs.Add($"db{db} GET {key}: redis-server {Hex(a)} EioSharp.Kv {Hex(b)}");
                }
            }
        }
        r.Call("SELECT", "0");
        k.Call("SELECT", "0");
        Assert.True(diffs.Count == 0, $"{label}: stored bytes differ:\n  " + string.Join("\n  ", diffs.Take(10)));
        Assert.True(compared > 0, $"{label}: no keys left to compare");
        // Both representations must be among the compared values, or the test proves less than it claims.
        Assert.True(dense > 0 && sparse > 0, $"{label}: not both HLL representations left to compare (dense {dense}, sparse {sparse})");

        static string Hex(byte[]? v) => v is null ? "nil" : $"{v.Length} bytes " + Convert.ToHexString(v.AsSpan(0, Math.Min(v.Length, 64)));
    }

    /// <summary>A RESP2 connection that returns bulk strings as raw bytes (the shared harness decodes them as text).</summary>
    private sealed class RawConnection : IDisposable
    {
        private readonly Socket _socket;
        private readonly BufferedStream _in;

        public RawConnection(int port)
        {
            _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 20_000 };
            _socket.Connect(IPAddress.Loopback, port);
            _in = new BufferedStream(new NetworkStream(_socket, ownsSocket: false), 1 << 16);
            Call("HELLO", "2");
        }

        public List<string> Keys()
        {
            _socket.Send(RespConnection.Encode(["KEYS", "*"]));
            string header = ReadLine();
            int count = int.Parse(header.AsSpan(1), CultureInfo.InvariantCulture);
            var keys = new List<string>(count);
            for (int i = 0; i < count; i++) keys.Add(Encoding.UTF8.GetString(ReadReply()!));
            return keys;
        }

        /// <summary>Sends a command and returns a bulk reply's bytes, a line reply's text as bytes, or null for nil.</summary>
        public byte[]? Call(params string[] args)
        {
            _socket.Send(RespConnection.Encode(args));
            return ReadReply();
        }

        private byte[]? ReadReply()
        {
            string line = ReadLine();
            switch (line[0])
            {
                case '$':
                    int length = int.Parse(line.AsSpan(1), CultureInfo.InvariantCulture);
                    if (length < 0) return null;
                    var data = new byte[length + 2];
                    _in.ReadExactly(data);
                    return data[..length];
                case '*' or '%':
                    int n = int.Parse(line.AsSpan(1), CultureInfo.InvariantCulture) * (line[0] == '%' ? 2 : 1);
                    for (int i = 0; i < n; i++) ReadReply();
                    return [];
                default:
                    return Encoding.UTF8.GetBytes(line);
            }
        }

        private string ReadLine()
        {
            var sb = new StringBuilder();
            while (true)
            {
                int b = _in.ReadByte();
                if (b < 0) throw new EndOfStreamException("The server closed the connection.");
                if (b == '\n' && sb.Length > 0 && sb[^1] == '\r') return sb.ToString(0, sb.Length - 1);
                sb.Append((char)b);
            }
        }

        public void Dispose()
        {
            _in.Dispose();
            _socket.Dispose();
        }
    }
}
