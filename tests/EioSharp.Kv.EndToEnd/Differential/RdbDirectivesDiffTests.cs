using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace EioSharp.Kv.EndToEnd.Differential;

/// <summary>Issue 13, the RDB directives (branch h52): rdbcompression, rdbchecksum, stop-writes-on-bgsave-error,
/// rdb-del-sync-files, rdb-save-incremental-fsync, sanitize-dump-payload. Each against redis-server 7.0.15 started the
/// same way, replies compared byte for byte: CONFIG GET/SET (good, wrong type, immutable), DUMP payloads and the string
/// records of dump.rdb (LZF as redis compresses), RESTORE of corrupt payloads under each sanitize-dump-payload value,
/// -MISCONF after a failed BGSAVE, and SHUTDOWN refused when its save fails.</summary>
public sealed class RdbDirectivesDiffTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static readonly string[] s_names =
        ["rdbcompression", "rdbchecksum", "stop-writes-on-bgsave-error", "rdb-del-sync-files", "rdb-save-incremental-fsync", "sanitize-dump-payload"];

    private static void Same(RespConnection r, RespConnection k, params string[] args)
    {
        string rr = r.Call(args).ToString(), kr = k.Call(args).ToString();
        Assert.True(rr == kr, $"{string.Join(' ', args)}\n  redis-server: {rr}\n  EioSharp.Kv:  {kr}");
    }

    /// <summary>CONFIG GET with a pattern: the same (name, value) pairs, in any order.</summary>
    private static void SameSet(RespConnection r, RespConnection k, params string[] args)
    {
        static string Pairs(Resp reply) => string.Join("; ", reply.Items!.Chunk(2).Select(p => p[0].Text + "=" + p[1].Text).Order(StringComparer.Ordinal));
        string rr = Pairs(r.Call(args)), kr = Pairs(k.Call(args));
        Assert.True(rr == kr, $"{string.Join(' ', args)}\n  redis-server: {rr}\n  EioSharp.Kv:  {kr}");
    }

    /// <summary>Sends raw RESP arguments (binary payloads) and returns the raw reply line or bulk, bytes as they came.</summary>
    private static byte[] CallRaw(int port, params byte[][] args) =>
        RawResp.Call(port, out byte[] line, args) is { } body ? [.. line, .. body, (byte)'\r', (byte)'\n'] : line;

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Strings of every kind: short, integers, incompressible, compressible, at the 20/21-byte edge, long runs,
    /// small alphabets (many back-references), up to 20,000 bytes.</summary>
    private static List<byte[]> Strings(int seed)
    {
        var r = new Random(seed);
        var values = new List<byte[]>
        {
            B(new string('a', 100)), B(string.Concat(Enumerable.Repeat("hello world ", 10))), B(new string('x', 20)), B(new string('x', 21)),
            B("12345"), B("-5"), B("12345678901"), B("99999999999999"), B(string.Concat(Enumerable.Repeat("0123456789", 1000))), Array.Empty<byte>(),
        };
        byte[] random = new byte[100];
        r.NextBytes(random);
        values.Add(random);
        string[] alphabets = ["ab", "abcdefgh", "aaaab", "foo bar baz qux "];
        int[] lengths = [21, 22, 24, 25, 30, 40, 64, 100, 264, 300, 1000, 5000, 20000];
        for (int i = 0; i < 60; i++)
        {
            int n = lengths[r.Next(lengths.Length)];
            if (r.Next(5) == 0)
            {
                byte[] any = new byte[n];
                r.NextBytes(any);
                for (int j = 0; j < n; j += 1 + r.Next(8)) any[j] = (byte)'z'; // partly compressible
                values.Add(any);
                continue;
            }
            string alphabet = alphabets[r.Next(alphabets.Length)];
            values.Add(B(new string([.. Enumerable.Range(0, n).Select(_ => alphabet[r.Next(alphabet.Length)])])));
        }
        return values;
    }

    [Fact]
    public void Config_get_and_set_of_the_rdb_directives_match_redis()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        foreach (string name in s_names)
        {
            Same(r, k, "CONFIG", "GET", name);
            foreach (string value in (string[])["maybe", "1", "", "yes", "YES", "no", "No", "clients", "CLIENTS", "yes no"])
            {
                Same(r, k, "CONFIG", "SET", name, value);
                Same(r, k, "CONFIG", "GET", name);
            }
        }
        SameSet(r, k, "CONFIG", "GET", "rdb*"); // redis lists a pattern's matches in its dict's order
        Same(r, k, "CONFIG", "SET", "rdbcompression", "yes", "rdb-del-sync-files", "maybe"); // all or nothing
        Same(r, k, "CONFIG", "GET", "rdbcompression");
        Same(r, k, "CONFIG", "SET", "rdbcompression", "no", "sanitize-dump-payload", "yes", "stop-writes-on-bgsave-error", "no");
        SameSet(r, k, "CONFIG", "GET", "rdb*", "*payload", "stop-*");
        Same(r, k, "CONFIG", "SET", "rdbchecksum", "no", "rdbcompression", "yes"); // the immutable one refuses the whole set
        Same(r, k, "CONFIG", "GET", "rdbcompression");
    }

    [Fact]
    public void Config_file_values_and_config_rewrite_match_redis()
    {
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        string Conf(TempDir d)
        {
            string conf = Path.Combine(d.Path, "kv.conf");
            File.WriteAllText(conf, "# kept\nrdbcompression no\nrdbchecksum no\nsanitize-dump-payload clients\n");
            return conf;
        }
        string redisConf = Conf(redisDir), kvConf = Conf(kvDir);
        using var redis = RedisServerProcess.StartWithConfig(redisConf);
        using var kv = KvServerProcess.StartIn(kvDir.DataDir, kvConf, "--appendonly", "no");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        foreach (string name in s_names) Same(r, k, "CONFIG", "GET", name);
        Same(r, k, "CONFIG", "SET", "rdbcompression", "yes");
        Same(r, k, "CONFIG", "SET", "stop-writes-on-bgsave-error", "no");
        Same(r, k, "CONFIG", "SET", "rdb-save-incremental-fsync", "no");
        Same(r, k, "CONFIG", "REWRITE");

        // The directives' lines as redis writes them: kept in place (rdbcompression back to the default is removed),
        // the others appended; redis-server writes other directives too (paths, ports), so only ours are compared.
        // Appended lines come in redis's dict order: compared as a set.
        static string[] Ours(string conf, bool appended)
        {
            string[] lines = File.ReadAllLines(conf);
            int tail = Array.IndexOf(lines, "# Generated by CONFIG REWRITE");
            var part = appended ? lines.Skip(tail + 1) : lines.Take(tail);
            var ours = part.Where(l => l.StartsWith('#') || s_names.Any(n => l.StartsWith(n + " ", StringComparison.Ordinal)));
            return appended ? [.. ours.Order(StringComparer.Ordinal)] : [.. ours];
        }
        Assert.Equal(Ours(redisConf, false), Ours(kvConf, false));
        Assert.Equal(Ours(redisConf, true), Ours(kvConf, true));
        Assert.Contains("rdb-save-incremental-fsync no", File.ReadAllLines(kvConf));
        Assert.DoesNotContain("rdbcompression no", File.ReadAllLines(kvConf));
    }

    [Theory]
    [InlineData("yes", 5)]
    [InlineData("yes", 6)]
    [InlineData("no", 7)]
    public void Dump_of_strings_is_redis_payload_byte_for_byte_and_restores_both_ways(string compression, int seed)
    {
        using var redis = RedisServerProcess.Start("--rdbcompression", compression);
        using var kv = KvServerProcess.Start("--appendonly", "no", "--rdbcompression", compression);
        List<byte[]> values = Strings(seed);
        int compressed = 0;
        for (int i = 0; i < values.Count; i++)
        {
            byte[] key = B("k" + i);
            Assert.Equal("+OK\r\n"u8.ToArray(), CallRaw(redis.Port, B("SET"), key, values[i]));
            Assert.Equal("+OK\r\n"u8.ToArray(), CallRaw(kv.Port, B("SET"), key, values[i]));
            byte[] fromRedis = CallRaw(redis.Port, B("DUMP"), key), fromKv = CallRaw(kv.Port, B("DUMP"), key);
            Assert.True(fromRedis.AsSpan().SequenceEqual(fromKv),
                $"DUMP of a {values[i].Length}-byte string (#{i}):\n  redis-server: {Convert.ToHexString(fromRedis)}\n  EioSharp.Kv:  {Convert.ToHexString(fromKv)}");
            int header = Array.IndexOf(fromKv, (byte)'\n') + 1;
            if (fromKv.Length > header + 1 && fromKv[header + 1] == 0xC3) compressed++;

            // Each restores the other's payload.
            byte[] payload = fromKv[header..^2];
            Assert.Equal("+OK\r\n"u8.ToArray(), CallRaw(kv.Port, B("RESTORE"), B("r" + i), B("0"), payload));
            Assert.Equal("+OK\r\n"u8.ToArray(), CallRaw(redis.Port, B("RESTORE"), B("r" + i), B("0"), payload));
            Assert.Equal(CallRaw(redis.Port, B("GET"), key), CallRaw(kv.Port, B("GET"), B("r" + i)));
        }
        if (compression == "yes") Assert.True(compressed > values.Count / 3, $"{compressed} of {values.Count} payloads LZF-compressed");
        else Assert.Equal(0, compressed);
    }

    [Fact]
    public void Migrate_of_a_string_and_a_hash_to_redis_server_works_since_the_payload_is_redis_own()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        using var k = new RespConnection(kv.Port);
        using var r = new RespConnection(redis.Port);
        string value = string.Concat(Enumerable.Repeat("compressible ", 50));
        k.Call("SET", "s", value);
        k.Call("HSET", "h", "f", "v");
        string port = redis.Port.ToString(CultureInfo.InvariantCulture);
        Assert.Equal("+OK", k.Call("MIGRATE", "127.0.0.1", port, "s", "0", "5000").ToString());
        Assert.Equal(value, r.Call("GET", "s").Text);
        Assert.Equal("0", k.Call("EXISTS", "s").Text);
        Assert.Equal("+OK", k.Call("MIGRATE", "127.0.0.1", port, "h", "0", "5000").ToString()); // every type: redis's payload
        Assert.Equal("v", r.Call("HGET", "h", "f").Text);
        Assert.Equal("0", k.Call("EXISTS", "h").Text);
    }

    [Fact]
    public void Debug_object_serializedlength_of_strings_follows_rdbcompression_as_redis()
    {
        using var redis = RedisServerProcess.Start("--enable-debug-command", "yes");
        using var kv = KvServerProcess.Start("--appendonly", "no", "--enable-debug-command", "yes");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        static string Length(RespConnection c) => c.Call("DEBUG", "OBJECT", "s").Text!.Split(' ').First(p => p.StartsWith("serializedlength:", StringComparison.Ordinal));
        foreach (string compression in (string[])["yes", "no"])
        {
            Same(r, k, "CONFIG", "SET", "rdbcompression", compression);
            foreach (string value in (string[])[new string('a', 100), "short", "12345", string.Concat(Enumerable.Repeat("abcdefgh", 40))])
            {
                Same(r, k, "SET", "s", value);
                Assert.Equal(Length(r), Length(k));
            }
        }
    }

    /// <summary>A string payload (type, body, RDB version, CRC-64 over the rest) with a body of our making.</summary>
    private static byte[] Payload(byte[] body, ushort version = 10)
    {
        var p = new List<byte> { 0 };
        p.AddRange(body);
        p.Add((byte)version);
        p.Add((byte)(version >> 8));
        byte[] crcInput = [.. p];
        ulong crc = Crc64(crcInput);
        byte[] footer = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(footer, crc);
        return [.. crcInput, .. footer];
    }

    private static ulong Crc64(ReadOnlySpan<byte> data)
    {
        ulong crc = 0;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x95ac9329ac4bc9b5 : crc >> 1;
        }
        return crc;
    }

    [Fact]
    public void Restore_of_corrupt_string_payloads_answers_as_redis_under_each_sanitize_dump_payload()
    {
        using var redis = RedisServerProcess.Start();
        using var kv = KvServerProcess.Start("--appendonly", "no");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        Same(r, k, "SET", "src", new string('a', 100));
        byte[] good = CallRaw(kv.Port, B("DUMP"), B("src"));
        good = good[(Array.IndexOf(good, (byte)'\n') + 1)..^2];
        byte[] body = good[1..^10]; // C3, lengths, LZF data
        var cases = new List<(string Name, byte[] Payload)>
        {
            ("good", good),
            ("version 9", Payload(body, 9)),
            ("version 11", Payload(body, 11)),
            ("LZF data cut short", Payload(body[..^1])),
            ("LZF data with a byte more", Payload([.. body, 0x00])),
            ("original length too large", Payload([.. body[..2], 0x65, .. body[3..]])),
            ("original length too small", Payload([.. body[..2], 0x63, .. body[3..]])),
            ("back-reference before the start", Payload([0xC3, 0x03, 0x0A, 0x20, 0x05, 0x00])),
            ("raw string shorter than its length", Payload([0x05, (byte)'a', (byte)'b'])),
            ("raw string with trailing bytes", Payload([0x01, (byte)'a', (byte)'b'])),
            ("int8", Payload([0xC0, 0x7B])),
            ("int16 cut short", Payload([0xC1, 0x01])),
            ("int32", Payload([0xC2, 0x01, 0x02, 0x03, 0x04])),
            ("unknown encoding", Payload([0xC4, 0x00])),
            ("empty raw", Payload([0x00])),
            ("wrong checksum", [.. good[..^1], (byte)(good[^1] ^ 1)]),
        };
        foreach (string sanitize in (string[])["no", "yes", "clients"])
        {
            Same(r, k, "CONFIG", "SET", "sanitize-dump-payload", sanitize);
            foreach ((string name, byte[] payload) in cases)
            {
                byte[] key = B("t-" + sanitize + "-" + name.Replace(' ', '-'));
                byte[] fromRedis = CallRaw(redis.Port, B("RESTORE"), key, B("0"), payload);
                byte[] fromKv = CallRaw(kv.Port, B("RESTORE"), key, B("0"), payload);
                Assert.True(fromRedis.AsSpan().SequenceEqual(fromKv),
                    $"RESTORE ({name}, sanitize-dump-payload {sanitize})\n  redis-server: {Encoding.ASCII.GetString(fromRedis)}\n  EioSharp.Kv:  {Encoding.ASCII.GetString(fromKv)}");
                Assert.Equal(CallRaw(redis.Port, B("GET"), key), CallRaw(kv.Port, B("GET"), key));
            }
        }
    }

    /// <summary>The key records of an RDB file of string keys without expiry, each as its raw bytes (type, key, value
    /// with its encoding: raw, integer or LZF), in a set: redis and Kv write keys in different orders and different AUX
    /// fields, but each record must be the same bytes.</summary>
    private static List<string> StringRecords(byte[] file)
    {
        int p = 9;
        var records = new List<string>();
        int Length(out bool encoded)
        {
            byte b = file[p];
            encoded = b >> 6 == 3;
            switch (b >> 6)
            {
                case 0:
                case 3:
                    p++;
                    return b & 0x3F;
                case 1:
                    p += 2;
                    return ((b & 0x3F) << 8) | file[p - 1];
                default:
                    p += 5;
                    return (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(p - 4));
            }
        }
        void SkipString()
        {
            int n = Length(out bool encoded);
            if (!encoded)
            {
                p += n;
                return;
            }
            switch (n)
            {
                case 0: p += 1; break;
                case 1: p += 2; break;
                case 2: p += 4; break;
                default:
                    int c = Length(out _);
                    Length(out _);
                    p += c;
                    break;
            }
        }
        while (true)
        {
            byte op = file[p++];
            switch (op)
            {
                case 0xFA: // AUX
                    SkipString();
                    SkipString();
                    break;
                case 0xFE: // SELECTDB
                    Length(out _);
                    break;
                case 0xFB: // RESIZEDB
                    Length(out _);
                    Length(out _);
                    break;
                case 0xFF:
                    return records;
                case 0:
                    int start = p - 1;
                    SkipString();
                    SkipString();
                    records.Add(Convert.ToHexString(file, start, p - start));
                    break;
                default:
                    throw new InvalidDataException($"opcode {op} at {p - 1}: the test dataset has strings only");
            }
        }
    }

    [Theory]
    [InlineData("yes", "yes")]
    [InlineData("no", "no")]
    public void Save_writes_the_string_records_redis_writes_and_rdbchecksum_no_writes_a_zero_crc(string compression, string checksum)
    {
        using var redis = RedisServerProcess.Start("--rdbcompression", compression, "--rdbchecksum", checksum);
        using var kv = KvServerProcess.Start("--appendonly", "no", "--rdbcompression", compression, "--rdbchecksum", checksum);
        List<byte[]> values = Strings(41);
        for (int i = 0; i < values.Count; i++)
        {
            CallRaw(redis.Port, B("SET"), B("key:" + new string('k', i)), values[i]); // keys over 20 bytes are compressed too
            CallRaw(kv.Port, B("SET"), B("key:" + new string('k', i)), values[i]);
        }
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        Same(r, k, "SAVE");
        string redisDir = r.Call("CONFIG", "GET", "dir").Items![1].Text!;
        byte[] redisFile = File.ReadAllBytes(Path.Combine(redisDir, "dump.rdb"));
        byte[] kvFile = File.ReadAllBytes(Path.Combine(kv.DataDir, "dump.rdb"));
        List<string> redisRecords = StringRecords(redisFile), kvRecords = StringRecords(kvFile);
        Assert.Equal(values.Count, kvRecords.Count);
        Assert.Equal(redisRecords.Order(StringComparer.Ordinal), kvRecords.Order(StringComparer.Ordinal));
        ulong kvCrc = BinaryPrimitives.ReadUInt64LittleEndian(kvFile.AsSpan(kvFile.Length - 8));
        ulong redisCrc = BinaryPrimitives.ReadUInt64LittleEndian(redisFile.AsSpan(redisFile.Length - 8));
        Assert.Equal(redisCrc == 0, kvCrc == 0);
        Assert.Equal(checksum == "no", kvCrc == 0);
        if (checksum == "yes") Assert.Equal(Crc64(kvFile.AsSpan(0, kvFile.Length - 8)), kvCrc);
        var check = Tools.Run("redis-check-rdb", [Path.Combine(kv.DataDir, "dump.rdb")], timeout: s_wait);
        Assert.True(check.ExitCode == 0 && check.Output.Contains("RDB looks OK", StringComparison.Ordinal), check.Output);
    }

    [Fact]
    public void Rdbchecksum_no_loads_a_file_whose_checksum_is_wrong_and_yes_refuses_it_as_redis()
    {
        using var source = KvServerProcess.Start("--appendonly", "no");
        using (var c = new RespConnection(source.Port))
        {
            c.Call("SET", "k", new string('v', 300));
            c.Call("RPUSH", "l", "a", "b");
            Assert.Equal("+OK", c.Call("SAVE").ToString());
        }
        byte[] file = File.ReadAllBytes(Path.Combine(source.DataDir, "dump.rdb"));
        file[^1] ^= 0x5A; // a wrong, non-zero checksum
        foreach (string checksum in (string[])["yes", "no"])
        {
            using var dir = new TempDir();
            Directory.CreateDirectory(dir.DataDir);
            File.WriteAllBytes(Path.Combine(dir.DataDir, "dump.rdb"), file);
            if (checksum == "yes")
            {
                var redis = Tools.Run("redis-server", ["--port", RedisServerProcess.FreePort().ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                    "--dir", dir.DataDir, "--save", "", "--appendonly", "no", "--rdbchecksum", checksum], timeout: s_wait);
                Assert.True(redis.ExitCode == 1, $"redis-server exit {redis.ExitCode}\n{redis.Output}");
                (int exit, string output) = KvServerProcess.RunExpectingExit(dir.DataDir, s_wait, "--appendonly", "no", "--rdbchecksum", checksum);
                Assert.True(exit == 1 && output.Contains("checksum", StringComparison.Ordinal), $"exit {exit}\n{output}");
            }
            else
            {
                using (var redis = RedisServerProcess.Start("--dir", dir.DataDir, "--rdbchecksum", checksum))
                {
                    using var rc = new RespConnection(redis.Port);
                    Assert.Equal(300, rc.Call("GET", "k").Text!.Length);
                }
                using var kv = KvServerProcess.StartIn(dir.DataDir, "--appendonly", "no", "--rdbchecksum", checksum);
                using var c = new RespConnection(kv.Port);
                Assert.Equal(300, c.Call("GET", "k").Text!.Length);
                Assert.Equal("2", c.Call("LLEN", "l").Text);
            }
        }
    }

    private static string InfoField(RespConnection c, string field) => ServerInfo.Field(c, "persistence", field);

    private static void WaitFor(Func<bool> condition, string what) =>
        Assert.True(Poll.Until(condition, s_wait), "timed out waiting for " + what);

    /// <summary>Makes every save of the server in <paramref name="data"/> fail: a non-empty directory named dump.rdb is in
    /// the way of the rename (redis-server chdirs to its dir at start, so the directory itself cannot be swapped; and
    /// as root, permissions do not stop a write).</summary>
    private static void BlockSaves(string data)
    {
        Directory.CreateDirectory(Path.Combine(data, "dump.rdb"));
        File.WriteAllText(Path.Combine(data, "dump.rdb", "in-the-way"), "x");
    }

    private static void UnblockSaves(string data) => Directory.Delete(Path.Combine(data, "dump.rdb"), recursive: true);

    [Fact]
    public void A_failed_bgsave_stops_writes_with_misconf_until_a_save_succeeds_as_redis()
    {
        // Both servers' BGSAVE fails: the rename over dump.rdb cannot replace a non-empty directory.
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        string redisData = Path.Combine(redisDir.Path, "data"), kvData = Path.Combine(kvDir.Path, "data");
        Directory.CreateDirectory(redisData);
        Directory.CreateDirectory(kvData);
        using var redis = RedisServerProcess.Start("--dir", redisData, "--save", "3600 1000");
        using var kv = KvServerProcess.StartIn(kvData, "--appendonly", "no", "--save", "3600 1000");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        using var rtx = new RespConnection(redis.Port);
        using var ktx = new RespConnection(kv.Port);
        Same(r, k, "SET", "a", "1");
        Same(rtx, ktx, "MULTI");
        Same(rtx, ktx, "SET", "t", "1");
        BlockSaves(redisData);
        BlockSaves(kvData);
        Same(r, k, "BGSAVE");
        WaitFor(() => InfoField(r, "rdb_bgsave_in_progress") == "0" && InfoField(k, "rdb_bgsave_in_progress") == "0", "both BGSAVEs to end");
        Assert.Equal("err", InfoField(r, "rdb_last_bgsave_status"));
        Assert.Equal("err", InfoField(k, "rdb_last_bgsave_status"));

        Same(r, k, "SET", "b", "1"); // -MISCONF Redis is configured to save RDB snapshots...
        Assert.StartsWith("-MISCONF Redis is configured to save RDB snapshots", k.Call("SET", "b", "1").ToString(), StringComparison.Ordinal);
        Same(r, k, "GET", "a"); // reads go on
        Same(r, k, "PING");
        Same(r, k, "DEL", "a");
        Same(rtx, ktx, "EXEC"); // a transaction with a write is aborted with the error
        Same(r, k, "EVAL", "return redis.call('get','a')", "0");
        Same(r, k, "EVAL", "return redis.pcall('set','a','2')", "0");
        Same(r, k, "EVAL", "#!lua\nreturn redis.call('set','a','2')", "0");

        // stop-writes-on-bgsave-error no lets writes through; yes again refuses them; save "" too lets them through.
        Same(r, k, "CONFIG", "SET", "stop-writes-on-bgsave-error", "no");
        Same(r, k, "SET", "b", "2");
        Same(r, k, "CONFIG", "SET", "stop-writes-on-bgsave-error", "yes");
        Same(r, k, "SET", "b", "3");
        Same(r, k, "CONFIG", "SET", "save", "");
        Same(r, k, "SET", "b", "4");
        Same(r, k, "CONFIG", "SET", "save", "3600 1000");
        Same(r, k, "SET", "b", "5");

        // Nothing in the way: a successful BGSAVE clears the error.
        UnblockSaves(redisData);
        UnblockSaves(kvData);
        Same(r, k, "BGSAVE");
        WaitFor(() => InfoField(r, "rdb_last_bgsave_status") == "ok" && InfoField(k, "rdb_last_bgsave_status") == "ok", "both BGSAVEs to succeed");
        Same(r, k, "SET", "b", "6");
        Same(r, k, "GET", "b");
        Same(r, k, "PING");
    }

    [Fact]
    public void Shutdown_is_refused_when_its_save_fails_and_force_exits_as_redis()
    {
        using var redisDir = new TempDir();
        using var kvDir = new TempDir();
        string redisData = Path.Combine(redisDir.Path, "data"), kvData = Path.Combine(kvDir.Path, "data");
        Directory.CreateDirectory(redisData);
        Directory.CreateDirectory(kvData);
        using var redis = RedisServerProcess.Start("--dir", redisData, "--save", "3600 1000");
        using var kv = KvServerProcess.StartIn(kvData, "--appendonly", "no", "--save", "3600 1000");
        using var r = new RespConnection(redis.Port);
        using var k = new RespConnection(kv.Port);
        Same(r, k, "SET", "a", "1");
        BlockSaves(redisData);
        BlockSaves(kvData);

        Same(r, k, "SHUTDOWN"); // -ERR Errors trying to SHUTDOWN. Check logs.
        Assert.Equal("-ERR Errors trying to SHUTDOWN. Check logs.", k.Call("SHUTDOWN", "SAVE").ToString());
        Same(r, k, "SHUTDOWN", "SAVE");
        Same(r, k, "GET", "a"); // still running
        Same(r, k, "SET", "b", "1"); // a failed SAVE (not BGSAVE) does not stop writes
        Same(r, k, "SAVE");
        Same(r, k, "SET", "c", "1");
        Assert.False(kv.HasExited);
        Assert.True(kv.WaitForLog("Error trying to save the DB, can't exit.", TimeSpan.FromSeconds(5)), kv.Log);

        // Nothing in the way: SHUTDOWN saves, exits 0, the file has both keys.
        UnblockSaves(kvData);
        try
        {
            k.Call("SHUTDOWN");
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or SocketException)
        {
        }
        Assert.Equal(0, kv.WaitForExit(s_wait));
        using (var again = KvServerProcess.StartIn(kvData, "--appendonly", "no"))
        {
            using var c = new RespConnection(again.Port);
            Assert.Equal("1", c.Call("GET", "a").Text);
            Assert.Equal("1", c.Call("GET", "b").Text);
        }
    }

    [Fact]
    public void Shutdown_force_exits_when_its_save_fails()
    {
        using var dir = new TempDir();
        string data = Path.Combine(dir.Path, "data");
        Directory.CreateDirectory(data);
        using var kv = KvServerProcess.StartIn(data, "--appendonly", "no", "--save", "3600 1000");
        using var k = new RespConnection(kv.Port);
        k.Call("SET", "a", "1");
        BlockSaves(data);
        try
        {
            k.Call("SHUTDOWN", "FORCE");
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or SocketException)
        {
        }
        Assert.Equal(0, kv.WaitForExit(s_wait));
        Assert.Contains("Error trying to save the DB. Exit anyway.", kv.Log, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("no")]
    public void Rdb_save_incremental_fsync_syncs_every_32_mb_of_a_bgsave(string incremental)
    {
        using var kv = KvServerProcess.Start("--appendonly", "no", "--rdb-save-incremental-fsync", incremental, "--rdbcompression", "no");
        using var c = new RespConnection(kv.Port);
        var r = new Random(3);
        byte[] value = new byte[1 << 20];
        for (int i = 0; i < 70; i++)
        {
            r.NextBytes(value);
            CallRaw(kv.Port, B("SET"), B("big" + i), value);
        }
        Assert.Equal("+Background saving started", c.Call("BGSAVE").ToString());
        Assert.True(kv.WaitForLog("Background saving terminated with success", s_wait), kv.Log);
        int expected = incremental == "yes" ? 2 : 0; // 70 MiB: an fsync after 32 MiB and after 64 MiB
        Assert.Contains($" bytes, {expected} incremental fsyncs,", kv.Log, StringComparison.Ordinal);
    }
}
