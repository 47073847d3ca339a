using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using EioSharp.Kv;

namespace EioSharp.Kv.Tests;

/// <summary>The generic key commands: COPY, TOUCH, OBJECT, MEMORY USAGE, DUMP/RESTORE, SORT, RENAME across types.</summary>
public class KeyspaceTests
{
    private static byte[] RunBytes(StoreHarness h, params byte[][] args)
    {
        var buffer = new ArrayBufferWriter<byte>();
        h.Store.Execute(KvCommand.Create(args), h.Now, new RespWriter(buffer), h.Aof);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The payload of a DUMP reply (<c>$len\r\npayload\r\n</c>).</summary>
    private static byte[] Dump(StoreHarness h, string key)
    {
        byte[] reply = RunBytes(h, Resp.Bytes("DUMP"), Resp.Bytes(key));
        int cr = Array.IndexOf(reply, (byte)'\r');
        int len = int.Parse(Encoding.ASCII.GetString(reply, 1, cr - 1));
        return reply.AsSpan(cr + 2, len).ToArray();
    }

    private static string Restore(StoreHarness h, string key, byte[] payload, params string[] options) =>
        Encoding.UTF8.GetString(RunBytes(h, [Resp.Bytes("RESTORE"), Resp.Bytes(key), Resp.Bytes("0"), payload, .. options.Select(Resp.Bytes)]));

    /// <summary>A payload with a valid footer around any type byte and body (for lying payloads).</summary>
    private static byte[] Forge(byte type, string body)
    {
        byte[] b = Encoding.Latin1.GetBytes(body);
        var p = new byte[1 + b.Length + 10];
        p[0] = type;
        b.CopyTo(p, 1);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(1 + b.Length), KvDump.LegacyVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(3 + b.Length), KvDump.Crc64(p.AsSpan(0, 3 + b.Length)));
        return p;
    }

    [Fact]
    public void Crc64_is_redis_crc64_jones() =>
        Assert.Equal(0xe9c6d914c4b8d9caUL, KvDump.Crc64("123456789"u8)); // the check value of Redis's crc64.c

    [Fact]
    public void Copy_deep_copies_any_type_with_db_and_replace()
    {
        var h = new StoreHarness();
        h.Run("RPUSH", "l", "a", "b");
        h.Run("PEXPIRE", "l", "50000");
        Assert.Equal(":1\r\n", h.Run("COPY", "l", "l2"));
        h.Run("RPUSH", "l2", "c");
        Assert.Equal(":2\r\n", h.Run("LLEN", "l"));
        Assert.Equal(":3\r\n", h.Run("LLEN", "l2"));
        Assert.Equal(":50000\r\n", h.Run("PTTL", "l2"));
        Assert.Equal(":0\r\n", h.Run("COPY", "l", "l2"));
        Assert.Equal(":1\r\n", h.Run("COPY", "l", "l2", "REPLACE"));
        Assert.Equal(":2\r\n", h.Run("LLEN", "l2"));
        Assert.Equal(":1\r\n", h.Run("COPY", "l", "l", "DB", "1"));
        Assert.Equal("-ERR source and destination objects are the same\r\n", h.Run("COPY", "l", "l"));
        Assert.Equal("-ERR DB index is out of range\r\n", h.Run("COPY", "l", "x", "DB", "16"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", h.Run("COPY", "l", "x", "DB", "x"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("COPY", "l", "x", "FOO"));
        Assert.Equal(":0\r\n", h.Run("COPY", "none", "x"));
        h.Run("APPEND", "s", "1");
        h.Run("APPEND", "s", "2");
        h.Run("COPY", "s", "s2");
        Assert.Equal("$3\r\nraw\r\n", h.Run("OBJECT", "ENCODING", "s2")); // the encoding travels with the value
        Assert.Contains("COPY l l DB 1", h.Logged);
    }

    [Fact]
    public void Object_encoding_of_strings_follows_redis()
    {
        var h = new StoreHarness();
        (string Setup, string Expected)[] cases =
        [
            ("SET k 12345", "int"), ("SET k -9223372036854775808", "int"), ("SET k 9223372036854775808", "embstr"),
            ("SET k 012", "embstr"), ("SET k -0", "embstr"), ("SET k " + new string('x', 44), "embstr"),
            ("SET k " + new string('x', 45), "raw"), ("INCRBYFLOAT k 3", "embstr"), ("INCR k", "int"),
            ("APPEND k 5", "raw"), ("SETRANGE k 0 1", "raw"), ("MSET k 7", "int"), ("GETSET k abc", "embstr"),
        ];
        foreach (var (setup, expected) in cases)
        {
            if (setup.StartsWith("SET ", StringComparison.Ordinal) || setup.StartsWith("INCRBYFLOAT", StringComparison.Ordinal)) h.Run("DEL", "k");
            h.Run(setup.Split(' '));
            Assert.True($"${expected.Length}\r\n{expected}\r\n" == h.Run("OBJECT", "ENCODING", "k"), setup);
        }
        h.Run("DEL", "n");
        h.Run("APPEND", "n", "12"); // a new key made by APPEND is encoded as SET would
        Assert.Equal("$3\r\nint\r\n", h.Run("OBJECT", "ENCODING", "n"));
        h.Run("SETRANGE", "r", "0", "12");
        Assert.Equal("$3\r\nraw\r\n", h.Run("OBJECT", "ENCODING", "r"));
        h.Run("RENAME", "r", "r2");
        Assert.Equal("$3\r\nraw\r\n", h.Run("OBJECT", "ENCODING", "r2"));
        h.Run("SET", "i", "100");
        Assert.Equal(":2147483647\r\n", h.Run("OBJECT", "REFCOUNT", "i"));
        h.Run("SET", "i", "10000");
        Assert.Equal(":1\r\n", h.Run("OBJECT", "REFCOUNT", "i"));
        Assert.Equal("$-1\r\n", h.Run("OBJECT", "ENCODING", "none"));
        Assert.Equal("-ERR wrong number of arguments for 'object|encoding' command\r\n", h.Run("OBJECT", "ENCODING"));
        Assert.Equal("-ERR unknown subcommand 'foo'. Try OBJECT HELP.\r\n", h.Run("OBJECT", "foo", "i"));
        Assert.StartsWith("-ERR An LFU maxmemory policy is not selected", h.Run("OBJECT", "FREQ", "i"));
        Assert.Equal(":0\r\n", h.Run("OBJECT", "IDLETIME", "i"));
        Assert.StartsWith("*15\r\n+OBJECT <subcommand>", h.Run("OBJECT", "HELP"));
    }

    [Fact]
    public void Touch_and_memory_usage()
    {
        var h = new StoreHarness();
        h.Run("SET", "a", "1");
        h.Run("RPUSH", "l", "x", new string('y', 1000));
        Assert.Equal(":2\r\n", h.Run("TOUCH", "a", "l", "none"));
        long small = long.Parse(h.Run("MEMORY", "USAGE", "a")[1..^2]);
        long list = long.Parse(h.Run("MEMORY", "USAGE", "l", "SAMPLES", "0")[1..^2]);
        Assert.InRange(small, 1, 200);
        Assert.InRange(list, 1000, 2000);
        Assert.Equal("$-1\r\n", h.Run("MEMORY", "USAGE", "none"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("MEMORY", "USAGE", "a", "SAMPLES", "-1"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("MEMORY", "USAGE", "a", "FOO"));
        Assert.Equal("-ERR wrong number of arguments for 'memory|usage' command\r\n", h.Run("MEMORY", "USAGE"));
        Assert.Equal("-ERR unknown subcommand 'foo'. Try MEMORY HELP.\r\n", h.Run("MEMORY", "foo"));
    }

    [Fact]
    public void Dump_restore_round_trips_every_type_with_options()
    {
        var h = new StoreHarness();
        h.Run("SET", "s", "hello\r\nworld");
        var args = new List<string> { "RPUSH", "l" };
        for (int i = 0; i < 200; i++) args.Add("e" + i);
        h.Run([.. args]);
        h.Run("RPUSH", "l", "");
        foreach (string key in new[] { "s", "l" })
        {
            byte[] payload = Dump(h, key);
            string Read(string k) => key == "s" ? h.Run("GET", k) : h.Run("LRANGE", k, "0", "-1");
            string before = Read(key);
            Assert.Equal("-BUSYKEY Target key name already exists.\r\n", Restore(h, key, payload));
            Assert.Equal("+OK\r\n", Restore(h, key + "2", payload));
            Assert.Equal(before, Read(key + "2"));
            Assert.Equal("+OK\r\n", Restore(h, key, payload, "REPLACE", "IDLETIME", "100"));
            Assert.Equal(":100\r\n", h.Run("OBJECT", "IDLETIME", key));
        }
        Assert.Equal("$-1\r\n", h.Run("DUMP", "none"));

        byte[] p = Dump(h, "l");
        Assert.Equal("+OK\r\n", Encoding.UTF8.GetString(RunBytes(h, Resp.Bytes("RESTORE"), Resp.Bytes("t"), Resp.Bytes("5000"), p)));
        Assert.Equal(":5000\r\n", h.Run("PTTL", "t"));
        Assert.Contains(h.Logged, c => c.StartsWith("RESTORE t " + (h.Now + 5000), StringComparison.Ordinal) && c.EndsWith("ABSTTL", StringComparison.Ordinal));
        Assert.Equal("+OK\r\n", Encoding.UTF8.GetString(RunBytes(h, Resp.Bytes("RESTORE"), Resp.Bytes("t"), Resp.Bytes((h.Now + 9000).ToString()), p, Resp.Bytes("ABSTTL"), Resp.Bytes("REPLACE"))));
        Assert.Equal(":9000\r\n", h.Run("PTTL", "t"));
        // Already expired with REPLACE: the old key is deleted, nothing created.
        Assert.Equal("+OK\r\n", Encoding.UTF8.GetString(RunBytes(h, Resp.Bytes("RESTORE"), Resp.Bytes("t"), Resp.Bytes("1"), p, Resp.Bytes("ABSTTL"), Resp.Bytes("REPLACE"))));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "t"));
        Assert.Equal("-ERR Invalid TTL value, must be >= 0\r\n", Encoding.UTF8.GetString(RunBytes(h, Resp.Bytes("RESTORE"), Resp.Bytes("u"), Resp.Bytes("-1"), p)));
        Assert.Equal("-ERR Invalid IDLETIME value, must be >= 0\r\n", Restore(h, "u", p, "IDLETIME", "-1"));
        Assert.Equal("-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n", Restore(h, "u", p, "FREQ", "256"));
        Assert.Equal("-ERR syntax error\r\n", Restore(h, "u", p, "FREQ", "1", "IDLETIME", "1"));
        Assert.Equal("-ERR syntax error\r\n", Restore(h, "u", p, "FOO"));

        // The AOF (RESTORE logged with an absolute TTL) replays to the same state.
        var log = new ArrayBufferWriter<byte>();
        var sink = new AofBufferSink(log);
        foreach (KvCommand c in h.Aof.Commands) sink.Append(c);
        var fresh = new KvStore();
        AofLoader.Load(log.WrittenSpan, fresh, h.Now);
        Assert.Equal(ListTests.State(h.Store, h.Now), ListTests.State(fresh, h.Now));
    }

    [Fact]
    public void Dump_restore_round_trips_hash_set_zset_and_stream()
    {
        var h = new StoreHarness();
        h.Run("HSET", "h", "a", "1", "b", "2");
        h.Run("SADD", "s", "x", "y", "1");
        h.Run("SADD", "si", "1", "2", "3");
        h.Run("ZADD", "z", "1", "a", "2.5", "b");
        h.Run("XADD", "st", "1-1", "f", "v");
        h.Run("XGROUP", "CREATE", "st", "g", "0");
        foreach (string key in new[] { "h", "s", "si", "z", "st" })
        {
            byte[] payload = Dump(h, key);
            Assert.Equal("+OK\r\n", Restore(h, key + "2", payload));
            Assert.Equal(payload, Dump(h, key + "2"));
            Assert.Equal(h.Run("TYPE", key), h.Run("TYPE", key + "2"));
            Assert.Equal(h.Run("OBJECT", "ENCODING", key), h.Run("OBJECT", "ENCODING", key + "2"));
        }
    }

    [Fact]
    public void Restore_rejects_every_corrupt_payload_with_an_error()
    {
        var h = new StoreHarness();
        var args = new List<string> { "RPUSH", "l" };
        for (int i = 0; i < 70; i++) args.Add("v" + i);
        h.Run([.. args]);
        h.Run("SET", "s", "text");
        foreach (string key in new[] { "l", "s" })
        {
            byte[] good = Dump(h, key);
            for (int i = 0; i < good.Length; i++)
            {
                byte[] flipped = (byte[])good.Clone();
                flipped[i] ^= (byte)(1 << (i % 8));
                Assert.StartsWith("-ERR DUMP payload version or checksum are wrong", Restore(h, "x", flipped));
            }
            for (int n = 0; n < good.Length; n++)
                Assert.StartsWith("-ERR DUMP payload version or checksum are wrong", Restore(h, "x", good[..n]));
        }
        // Valid footers around lying or foreign bodies: "Bad data format", never a crash or a huge allocation.
        string[] bodies =
        [
            "*3\r\n$5\r\nRPUSH\r\n$0\r\n\r\n$999999999\r\nx\r\n", // a bulk longer than the payload
            "*99999999\r\n$5\r\nRPUSH\r\n", // more arguments than the payload could hold
            "*3\r\n$5\r\nRPUSH\r\n$0\r\n\r\n$1\r\nx\r", // truncated
            "*3\r\n$4\r\nSADD\r\n$0\r\n\r\n$1\r\nx\r\n", // not a list command
            "*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$1\r\nx\r\n", // another key than the placeholder
            "*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n",
            "*3\r\n$3\r\nDEL\r\n$0\r\n\r\n$1\r\nx\r\n",
            "*2\r\n$5\r\nRPUSH\r\n$0\r\n\r\n", // fails (arity)
            "PING\r\n", // inline
            "", // nothing
            "*-1\r\n",
            "$3\r\nabc\r\n",
        ];
        foreach (string body in bodies)
            Assert.True(Restore(h, "x", Forge((byte)KvType.List, body)) == "-ERR Bad data format\r\n", body);
        Assert.Equal("-ERR Bad data format\r\n", Restore(h, "x", Forge(9, "*3\r\n$5\r\nRPUSH\r\n$0\r\n\r\n$1\r\nx\r\n"))); // unknown type
        Assert.Equal("-ERR Bad data format\r\n", Restore(h, "x", Forge((byte)KvType.Set, "*3\r\n$5\r\nRPUSH\r\n$0\r\n\r\n$1\r\nx\r\n"))); // lies about its type
        Assert.Equal("+OK\r\n", Restore(h, "x", Forge((byte)KvType.List, "*3\r\n$5\r\nRPUSH\r\n$0\r\n\r\n$1\r\nx\r\n")));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "k"));
        Assert.Equal(":3\r\n", h.Run("DBSIZE"));
    }

    /// <summary>Values of every type in small and big encodings, with integers, for the payload tests below.</summary>
    private static StoreHarness EveryType()
    {
        var h = new StoreHarness();
        h.Run("SET", "str", "hello");
        h.Run("SET", "int", "-123456");
        h.Run("RPUSH", "list", "a", "1", "", "-70000", "4294967296", new string('x', 100));
        h.Run([.. new[] { "RPUSH", "biglist" }, .. Enumerable.Range(0, 300).Select(i => "e" + i)]);
        h.Run("SADD", "intset", "1", "-2", "300", "70000", "-9223372036854775808");
        h.Run("SADD", "set", "a", "b", "12", "");
        h.Run([.. new[] { "SADD", "bigset" }, .. Enumerable.Range(0, 600).Select(i => i.ToString())]);
        h.Run("ZADD", "zset", "1", "a", "-2.5", "b", "inf", "c", "-inf", "d", "0", "e");
        h.Run([.. new[] { "ZADD", "bigzset" }, .. Enumerable.Range(0, 200).SelectMany(i => new[] { (i * 0.37).ToString("R"), "m" + i })]);
        h.Run("HSET", "hash", "f", "v", "n", "42", "", "empty");
        h.Run([.. new[] { "HSET", "bighash" }, .. Enumerable.Range(0, 200).SelectMany(i => new[] { "f" + i, i.ToString() })]);
        h.Run("XADD", "stream", "1-1", "a", "1", "b", "2");
        h.Run("XADD", "stream", "1-2", "a", "3", "b", "4");
        h.Run("XADD", "stream", "2-0", "c", "5");
        h.Run("XDEL", "stream", "1-2");
        h.Run("XGROUP", "CREATE", "stream", "g", "0");
        h.Run("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "stream", ">");
        h.Run("XGROUP", "CREATECONSUMER", "stream", "g", "bob");
        return h;
    }

    private static readonly string[] s_everyTypeKeys =
        ["str", "int", "list", "biglist", "intset", "set", "bigset", "zset", "bigzset", "hash", "bighash", "stream"];

    private static byte[] WithFooter(ReadOnlySpan<byte> typeAndValue, ushort version)
    {
        var p = new byte[typeAndValue.Length + 10];
        typeAndValue.CopyTo(p);
        BinaryPrimitives.WriteUInt16LittleEndian(p.AsSpan(typeAndValue.Length), version);
        BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(typeAndValue.Length + 2), KvDump.Crc64(p.AsSpan(0, typeAndValue.Length + 2)));
        return p;
    }

    [Fact]
    public void Dump_is_the_rdb_object_with_version_10_and_legacy_ei_payloads_still_restore()
    {
        StoreHarness h = EveryType();
        foreach (string key in s_everyTypeKeys)
        {
            byte[] payload = Dump(h, key);
            Assert.Equal(10, BinaryPrimitives.ReadUInt16LittleEndian(payload.AsSpan(payload.Length - 10)));
            Assert.True(h.Store.Database(0).TryGetValue(Resp.Bytes(key), out KvEntry? e));
            byte expectedType = e.Value switch
            {
                byte[] => 0, KvList => 1, KvSet => 2, KvZSet => 5, KvHash => 4, _ => 19,
            };
            Assert.Equal(expectedType, payload[0]);

            // The payload EioSharp.Kv wrote before: the KvType byte, the AOF commands for the empty key, "EI".
            var legacy = new ArrayBufferWriter<byte>();
            if (e.Value is byte[] s)
            {
                legacy.Write([(byte)KvType.String]);
                legacy.Write(s);
            }
            else
            {
                var o = (KvObject)e.Value;
                legacy.Write([(byte)o.Type]);
                o.WriteRewrite([], legacy);
            }
            Assert.Equal("+OK\r\n", Restore(h, "legacy-" + key, WithFooter(legacy.WrittenSpan, KvDump.LegacyVersion)));
            if (key != "stream")
            {
                Assert.True(payload.AsSpan().SequenceEqual(Dump(h, "legacy-" + key)), key);
                continue;
            }
            // A stream: the same entries, groups and PEL (the legacy rebuild stamps delivery and seen times anew).
            foreach (string[] read in new[] { new[] { "XRANGE", "K", "-", "+" }, ["XINFO", "GROUPS", "K"], ["XPENDING", "K", "g"] })
            {
                Assert.Equal(h.Run([.. read.Select(a => a == "K" ? key : a)]), h.Run([.. read.Select(a => a == "K" ? "legacy-" + key : a)]));
            }
        }
    }

    [Fact]
    public void Restore_never_throws_on_mutated_rdb_payloads_of_every_type()
    {
        StoreHarness h = EveryType();
        var random = new Random(42);
        int restored = 0, refused = 0;
        foreach (string key in s_everyTypeKeys)
        {
            byte[] good = Dump(h, key);
            byte[] value = good[..^10];
            for (int i = 0; i < 300; i++)
            {
                byte[] mutated = (byte[])value.Clone();
                switch (random.Next(4))
                {
                    case 0: // a few random bytes
                        for (int n = 1 + random.Next(3); n > 0; n--) mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
                        break;
                    case 1: // cut short
                        mutated = mutated[..random.Next(1, mutated.Length)];
                        break;
                    case 2: // another type byte: the value read as another encoding
                        mutated[0] = (byte)random.Next(22);
                        break;
                    default: // a length byte made huge
                        mutated[random.Next(1, mutated.Length)] = (byte)(0x80 + random.Next(2));
                        break;
                }
                string reply = Restore(h, "fuzz", WithFooter(mutated, 10), "REPLACE");
                if (reply == "+OK\r\n") restored++;
                else
                {
                    Assert.Equal("-ERR Bad data format\r\n", reply);
                    refused++;
                }
            }
        }
        Assert.True(refused > 500 && restored > 50, $"{restored} restored, {refused} refused");
        Assert.Equal(":" + (s_everyTypeKeys.Length + 1) + "\r\n", h.Run("DBSIZE"));
    }

    [Fact]
    public void Sort_numeric_alpha_by_get_limit_store()
    {
        var h = new StoreHarness();
        h.Run("RPUSH", "n", "3", "10", "1", "2.5", "-1");
        Assert.Equal("-1 1 2.5 3 10", Items(h.Run("SORT", "n")));
        Assert.Equal("10 3 2.5 1 -1", Items(h.Run("SORT", "n", "DESC")));
        Assert.Equal("-1 1 10 2.5 3", Items(h.Run("SORT", "n", "ALPHA")));
        Assert.Equal("1 2.5", Items(h.Run("SORT", "n", "LIMIT", "1", "2")));
        Assert.Equal("-1 1 2.5 3 10", Items(h.Run("SORT", "n", "LIMIT", "-5", "-1")));
        Assert.Equal("3 10 1 2.5 -1", Items(h.Run("SORT", "n", "BY", "nosort")));
        Assert.Equal("1 10", Items(h.Run("SORT", "n", "BY", "nosort", "DESC", "LIMIT", "2", "2"))); // from index len-start-1 towards the head
        h.Run("RPUSH", "w", "b", "a", "c");
        Assert.Equal("-ERR One or more scores can't be converted into double\r\n", h.Run("SORT", "w"));
        h.Run("MSET", "weight_a", "3", "weight_b", "1", "weight_c", "2", "obj_a", "A", "obj_c", "C");
        Assert.Equal("b c a", Items(h.Run("SORT", "w", "BY", "weight_*")));
        Assert.Equal("b 1 nil c 2 C a 3 A", Items(h.Run("SORT", "w", "BY", "weight_*", "GET", "#", "GET", "weight_*", "GET", "obj_*")));
        Assert.Equal("nil nil nil", Items(h.Run("SORT", "w", "ALPHA", "GET", "nostar")));
        Assert.Equal(":3\r\n", h.Run("SORT", "w", "ALPHA", "DESC", "STORE", "dst"));
        Assert.Equal("c b a", Items(h.Run("LRANGE", "dst", "0", "-1")));
        Assert.Equal(":3\r\n", h.Run("SORT", "w", "ALPHA", "GET", "obj_*", "STORE", "dst"));
        Assert.Equal("A  C", Items(h.Run("LRANGE", "dst", "0", "-1"))); // a missing GET stores an empty string
        Assert.Equal(":0\r\n", h.Run("SORT", "none", "STORE", "dst"));
        Assert.Equal(":0\r\n", h.Run("EXISTS", "dst"));
        Assert.Equal("-ERR syntax error\r\n", h.Run("SORT_RO", "w", "ALPHA", "STORE", "dst"));
        Assert.Equal("a b c", Items(h.Run("SORT_RO", "w", "ALPHA")));
        Assert.Equal("-ERR syntax error\r\n", h.Run("SORT", "w", "LIMIT", "1"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", h.Run("SORT", "w", "LIMIT", "x", "1"));
        h.Run("SET", "str", "x");
        Assert.StartsWith("-WRONGTYPE", h.Run("SORT", "str"));
        h.Run("RPUSH", "e", "", " 2", "1e1");
        Assert.Equal("  2 1e1", Items(h.Run("SORT", "e"))); // strtod: "" is 0, leading spaces and exponents are fine
    }

    private static string Items(string reply)
    {
        if (reply.StartsWith('-')) return reply;
        string[] lines = reply.Split("\r\n");
        var r = new List<string>();
        for (int i = 1; i < lines.Length - 1; i++)
        {
            if (lines[i] == "$-1") r.Add("nil");
            else if (lines[i].StartsWith('$')) r.Add(lines[++i]);
        }
        return string.Join(' ', r);
    }
    /// <summary>EXISTS, TTL and PTTL of live keys go by row (no handle per key, issue 14): the same replies, statistics and
    /// access records as through a lookup, and an expired key is still removed (counted, not found) on the way.</summary>
    [Fact]
    public void Exists_and_ttl_by_row_match_the_lookup_path()
    {
        var h = new StoreHarness();
        h.Run("SET", "plain", "v");
        h.Run("SET", "timed", "v", "PX", "10500");
        h.Run("SET", "gone", "v", "PX", "100");
        h.Run("RPUSH", "list", "a");
        Assert.Equal(":4\r\n", h.Run("EXISTS", "plain", "plain", "timed", "list", "missing"));
        Assert.Equal(4, h.Store.KeyspaceHits); // EXISTS counts a hit or a miss per key (Redis's LOOKUP_NOTOUCH)
        Assert.Equal(1, h.Store.KeyspaceMisses);
        Assert.Equal(":-1\r\n", h.Run("TTL", "plain"));
        Assert.Equal(":-1\r\n", h.Run("PTTL", "list"));
        Assert.Equal(":11\r\n", h.Run("TTL", "timed")); // 10.5 s rounds to 11, as Redis
        Assert.Equal(":10500\r\n", h.Run("PTTL", "timed"));
        Assert.Equal(":-2\r\n", h.Run("TTL", "missing"));
        Assert.Equal(8, h.Store.KeyspaceHits);
        Assert.Equal(2, h.Store.KeyspaceMisses);
        h.Now += 100; // "gone" expires at Now + 100: still live at that very millisecond
        Assert.Equal(":0\r\n", h.Run("PTTL", "gone"));
        Assert.Equal(":1\r\n", h.Run("EXISTS", "gone"));
        h.Now += 1;
        Assert.Equal(":1\r\n", h.Run("EXISTS", "gone", "plain"));
        Assert.Equal(1, h.Store.ExpiredKeys);
        Assert.Equal(":-2\r\n", h.Run("TTL", "gone"));
        Assert.Equal(":3\r\n", h.Run("DBSIZE"));
        Assert.Equal(":10399\r\n", h.Run("PTTL", "timed"));
        h.Now += 10_400;
        Assert.Equal(":-2\r\n", h.Run("PTTL", "timed")); // expired: through LookupRead (a miss, removed)
        Assert.Equal(2, h.Store.ExpiredKeys);
        Assert.Equal(5, h.Store.KeyspaceMisses); // and EXISTS gone's (expired)
    }
}
